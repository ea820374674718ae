"""GPT-2 as minisumm uses it: load it, apply a method, and run its forward pass with a soft prompt in front.

    load_model_and_tokenizer(name)  → (GPT2LMHeadModel, tokenizer)   hub id, local folder, tiny-news, tiny-random
    build(config)                   → (model, tokenizer, trainable parameters, config as built)
    load_checkpoint(path)           → (model, tokenizer, config)      a trained run, ready for inference
    body(model, ids, mask, cache)   → hidden states                   the forward pass every path shares

The forward pass:

    token ids ──wte──► embeddings ──(soft prompt in front, if the model carries one)──► + wpe(positions)
              ──► GPT-2 blocks ──► ln_f ──► hidden states of the real tokens

Positions count real tokens only, `position_ids = attention_mask.cumsum(-1) - 1`, so a left-padded prompt
and a right-padded training example give each token the position it would have alone. A soft prompt's P
vectors take positions 0…P-1 and the text starts at P. The loss (`minisumm.loss`) and the decoder
(`minisumm.generate`) both go through `body`.
"""

from __future__ import annotations

from pathlib import Path

import torch

from minisumm import methods
from minisumm.config import RunConfig
from minisumm.tools.loading import load_model_and_tokenizer

__all__ = ["load_model_and_tokenizer", "build", "load_checkpoint", "set_dropout", "positions_from_mask", "embed",
           "body"]


def build(config: RunConfig):
    """Base model + tokenizer + the method applied: `(model, tokenizer, trainable parameters, config)`.

    The returned config is a copy of `config` as built: its `data.max_length` is lowered to the model's
    positions when it asks for more (tiny-random has 512). The caller's config is left as it was.
    """
    model, tokenizer = load_model_and_tokenizer(config.model.model, random_init=config.model.random_init)
    config = RunConfig.from_dict(config.to_dict())  # a copy: the caller's settings stay the caller's
    if config.data.max_length > model.config.n_positions:
        config.data.max_length = model.config.n_positions  # a model with fewer positions caps the layout
        config.validate()
    if config.model.dropout is not None:
        set_dropout(model, config.model.dropout)
    trainable = methods.apply(model, config.method, tokenizer=tokenizer)
    return model, tokenizer, trainable, config


def load_checkpoint(path: str | Path):
    """`(model, tokenizer, config)` ready for inference from a run folder or its `best/` or `last/`."""
    from minisumm.tools import checkpoint

    folder = checkpoint.resolve(path)
    config = checkpoint.read_config(folder)
    weights = checkpoint.read_tensors(folder / checkpoint.WEIGHTS)
    model, tokenizer, _, config = build(config)
    methods.load_trainable_state_dict(model, weights)
    return model.eval(), tokenizer, config


def set_dropout(model, p: float) -> None:
    """Set every dropout of GPT-2 (embedding, attention, residual) to `p`, in the modules and the config."""
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = p
    model.config.embd_pdrop = model.config.attn_pdrop = model.config.resid_pdrop = p


def positions_from_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """(B, T) mask of 1 for real tokens → (B, T) positions counting real tokens only (padding gets 0)."""
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)


def embed(model, input_ids: torch.Tensor, attention_mask: torch.Tensor, with_prompt: bool = True):
    """Token embeddings (B, T, C), with the model's soft prompt in front when it has one (and `with_prompt`).

    Returns `(embeds, attention_mask, P)`: (B, P+T, C), the mask (B, P+T) and the prompt's length P (0 without).
    """
    embeds = model.transformer.wte(input_ids)  # (B, T, C)
    soft_prompt = getattr(model, "soft_prompt", None)
    if soft_prompt is None or not with_prompt:
        return embeds, attention_mask, 0
    embeds, attention_mask = soft_prompt.prepend(embeds, attention_mask)  # (B, P+T, C), (B, P+T)
    return embeds, attention_mask, soft_prompt.length


def body(model, input_ids: torch.Tensor, attention_mask: torch.Tensor, cache=None,
         position_ids: torch.Tensor | None = None):
    """Run GPT-2's transformer on `input_ids` (B, T), soft prompt included when the model has one.

    Returns `(hidden, attention_mask, cache)`: `hidden` (B, T, C) for the T given tokens only (the soft
    prompt's outputs are dropped), the attention mask over everything now in the cache (prompt included),
    and the KV cache when one was passed in (None otherwise). The soft prompt goes in with the first
    chunk only, when the cache is still empty; later chunks continue from the cache.
    """
    first_chunk = cache is None or cache.get_seq_length() == 0
    embeds, attention_mask, prefix = embed(model, input_ids, attention_mask, with_prompt=first_chunk)
    if prefix or position_ids is None:
        position_ids = positions_from_mask(attention_mask)[:, -embeds.shape[1]:]
    out = model.transformer(inputs_embeds=embeds, attention_mask=attention_mask, position_ids=position_ids,
                            cache=cache, use_cache=cache is not None)
    return out.last_hidden_state[:, prefix:], attention_mask, out.cache
