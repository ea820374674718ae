"""GPT-2 as minisumm uses it: load it, apply a method, run its forward pass with a soft prompt or prefix in front.

    load_gpt2(name)                 → (GPT2LMHeadModel, tokenizer)   a hub id or a local save_pretrained folder
    build(config, load)             → (model, tokenizer, trainable parameters, config as built)
    body(model, ids, mask, cache)   → (hidden, mask, cache)          the forward pass every path shares

The forward pass:

    token ids ──wte──► embeddings ──(soft prompt in front, if the model carries one)──► + wpe(positions)
              ──► GPT-2 blocks (a prefix's keys and values first in every layer's cache) ──► ln_f
              ──► hidden states of the real tokens

Positions count real tokens only, `position_ids = attention_mask.cumsum(-1) - 1`, so a left-padded prompt
and a right-padded training example give each token the position it would have alone. A soft prompt's P
vectors take positions 0…P-1 and the text starts at P; a prefix (`minisumm.methods.prefix`) puts P ones in
front of the mask the same way (`with_prefix`), so the text starts at P behind it too. The loss
(`minisumm.loss`), its faster equal (`minisumm.speedups.labelled_positions`) and the decoder
(`minisumm.generate`) all go through `embed` and `with_prefix`, and the loss and the decoder through `body`: a
method that changes the forward pass changes it there.
"""

from __future__ import annotations

import torch
from transformers import AutoTokenizer, GPT2LMHeadModel

from minisumm import methods
from minisumm.config import RunConfig

__all__ = ["load_gpt2", "ready", "build", "set_dropout", "positions_from_mask", "embed", "with_prefix", "body"]


def load_gpt2(name: str = "gpt2", **options):
    """GPT-2 (default: GPT-2 small, 124M, Radford et al. 2019) and its tokenizer, from the Hugging Face hub or
    a local `save_pretrained` folder. Weights come from safetensors only: a pickle (`pytorch_model.bin`) can
    run code when loaded. `options` go to both `from_pretrained` calls (`local_files_only=True` offline)."""
    tokenizer = AutoTokenizer.from_pretrained(name, **options)
    model = GPT2LMHeadModel.from_pretrained(name, use_safetensors=True, **options)
    return ready(model, tokenizer)


def ready(model, tokenizer):
    """`(model, tokenizer)` as minisumm uses every GPT-2: fp32, eval mode (dropout off until training asks for
    it), and pad = EOS, as GPT-2 has no padding token (`minisumm.batching` keeps one real EOS label)."""
    tokenizer.pad_token = tokenizer.eos_token
    model.config.pad_token_id = tokenizer.eos_token_id
    if model.generation_config is not None:
        model.generation_config.pad_token_id = tokenizer.eos_token_id
    return model.float().eval(), tokenizer


def build(config: RunConfig, load=None):
    """Base model + tokenizer + the method applied: `(model, tokenizer, trainable parameters, config)`.

    `load(config.model)` returns the base model and tokenizer; without it, `load_gpt2(config.model.model)`.
    The commands pass `minisumm.tools.loading.load`, which also makes tiny-random, tiny-news and
    `--random-init` models and turns every failure into one sentence.

    The returned config is a copy of `config` as built: its `data.max_length` is lowered to the model's
    positions when it asks for more (tiny-random has 512). The caller's config is left as it was.
    """
    model, tokenizer = load(config.model) if load is not None else load_gpt2(config.model.model)
    config = RunConfig.from_dict(config.to_dict())  # a copy: the caller's settings stay the caller's
    if config.data.max_length > model.config.n_positions:
        config.data.max_length = model.config.n_positions  # a model with fewer positions caps the layout
        config.validate()
    if config.model.dropout is not None:
        set_dropout(model, config.model.dropout)
    trainable = methods.apply(model, config.method, tokenizer=tokenizer)
    return model, tokenizer, trainable, config


def set_dropout(model, p: float) -> None:
    """Set every dropout of GPT-2 (embedding, attention, residual) to `p`, in the modules and the config."""
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = p
    model.config.embd_pdrop = model.config.attn_pdrop = model.config.resid_pdrop = p


def positions_from_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """(B, T) mask of 1 for real tokens → (B, T) positions counting real tokens only (padding gets 0)."""
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)


def embed(model, input_ids: torch.Tensor, attention_mask: torch.Tensor | None, with_prompt: bool = True):
    """Token embeddings (B, T, C), with the model's soft prompt in front when it has one (and `with_prompt`).

    Returns `(embeds, attention_mask, P)`: (B, P+T, C), the mask (B, P+T) (None stays None) and the prompt's
    length P (0 without).
    """
    embeds = model.transformer.wte(input_ids)  # (B, T, C)
    soft_prompt = getattr(model, "soft_prompt", None)
    if soft_prompt is None or not with_prompt:
        return embeds, attention_mask, 0
    embeds, attention_mask = soft_prompt.prepend(embeds, attention_mask)  # (B, P+T, C), (B, P+T)
    return embeds, attention_mask, soft_prompt.length


def with_prefix(model, attention_mask: torch.Tensor | None, cache=None):
    """The mask (B, T) → (B, P+T) with the model's prefix in front, and a cache holding the prefix: `cache`
    (an empty DynamicCache, decoding) filled, or a fixed one for the training forward. Without a prefix, both
    as they were; no mask (None, the training forward) stays None. `(attention_mask, cache)`."""
    prefix = getattr(model, "prefix", None)
    if prefix is None:
        return attention_mask, cache
    if attention_mask is None:
        return None, prefix.cache(None, into=cache)
    batch = attention_mask.shape[0]
    attention_mask = torch.cat([attention_mask.new_ones(batch, prefix.length), attention_mask], dim=1)  # (B, P+T)
    return attention_mask, prefix.cache(batch, into=cache)


def body(model, input_ids: torch.Tensor, attention_mask: torch.Tensor, cache=None,
         position_ids: torch.Tensor | None = None):
    """Run GPT-2's transformer on `input_ids` (B, T), soft prompt or prefix included when the model has one.

    Returns `(hidden, attention_mask, cache)`: `hidden` (B, T, C) for the T given tokens only (the soft
    prompt's outputs are dropped), the attention mask over everything now in the cache (prompt or prefix
    included), and the KV cache when one was passed in (None otherwise). The soft prompt or prefix goes in
    with the first chunk only, when the cache is still empty; later chunks continue from the cache.

    `attention_mask` None: a batch without left padding (right-padded, as `minisumm.batching.collate` makes
    them). Causal attention alone then gives every real token what the mask would: it never sees a later
    position, and every earlier one is real. Pads get outputs nobody reads, and SDPA may run its flash kernel.
    """
    first_chunk = cache is None or cache.get_seq_length() == 0
    embeds, attention_mask, prompt = embed(model, input_ids, attention_mask, with_prompt=first_chunk)
    past = cache
    if first_chunk:
        attention_mask, past = with_prefix(model, attention_mask, cache)  # (B, P+T), a cache holding the prefix
    if attention_mask is None:
        position_ids = None  # every position counts: GPT-2 numbers them on from what the cache holds (a prefix)
    elif (first_chunk and attention_mask.shape[1] > input_ids.shape[1]) or position_ids is None:
        # a prompt's or prefix's P in front, or no positions given: count the real tokens
        position_ids = positions_from_mask(attention_mask)[:, -embeds.shape[1]:]
    out = model.transformer(inputs_embeds=embeds, attention_mask=attention_mask, position_ids=position_ids,
                            cache=past, use_cache=cache is not None)  # a prefix's fixed cache is only read
    return out.last_hidden_state[:, prompt:], attention_mask, out.cache if cache is not None else None
