"""Batched, KV-cached greedy decoding, written out by hand over `minisumm.model.body`.

    prompts (left-padded) ──prefill: body, empty cache──► prefix or soft prompt + prompt cached, next-token log-probs
        ──► ban_tokens, pick a token per row ──decode_step: body, 1 token, cache──► next log-probs
        ──► ... until EOS or max_new_tokens

Every model call goes through `minisumm.model.body`, the same forward as training, so a soft prompt is prepended
exactly once (in the prefill, while the cache is empty), a prefix's keys and values are the cache's first P
entries, and positions count real tokens only: a left-padded prompt gives each token the position it would
have alone. Decode steps pass their position explicitly, `(real tokens so far, soft prompt or prefix
included) - 1`, read off the running attention mask.

`prefill`, `decode_step` and `ban_tokens` are the steps every search takes: `greedy` here, beam search
(`--beams K`) in `minisumm.tools.beam_search`, which `generate` runs when it is passed as `search`.

Choices made here (transformers' `generate` has flags for each):
- Rows that have finished are dropped from the batch and the cache, so
  the last long summary does not drag finished ones through every step.
- `no_repeat_ngram` bans a token that would repeat an n-gram of the GENERATED text only. transformers'
  `no_repeat_ngram_size` on a decoder-only model also counts the prompt, which for summarisation forbids
  copying any three article words in a row; encoder-decoder summarisers (BART on CNN/DM) only ever see
  their own output, and we follow them.
- Precision: decoding runs in the model's own dtype. For bf16 or fp16 the caller casts the model
  (`model.to(torch.bfloat16)`, after merging LoRA in fp32) instead of using autocast: weights and KV
  cache take half the memory and every step reads 2-byte weights, where autocast would cast each frozen
  fp32 matrix again at every step (its cast cache keeps only tensors that require grad). Log-probs are
  taken in fp32 (`_log_probs`). On the tiny model, bf16 greedy departs from fp32 greedy only at near-ties
  (fp32 rates the two tokens within 0.1 nats; tested).
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from transformers import DynamicCache

from minisumm.errors import MinisummError
from minisumm.model import body


def generate(model, prompts: list[list[int]], *, eos_id: int, pad_id: int, max_new_tokens: int = 128,
             min_new_tokens: int = 0, no_repeat_ngram: int = 3, batch_size: int | None = None,
             progress: Callable[[int], object] | None = None, search=None) -> list[list[int]]:
    """Continue each prompt; return the new token ids per prompt (no prompt, no final EOS), in input order.

    `search(model, input_ids, attention_mask, *, eos_id, max_new_tokens, min_new_tokens, no_repeat_ngram)`
    decodes one left-padded batch: `greedy` by default. `no_repeat_ngram` 0 turns the n-gram ban off.
    `batch_size` prompts are decoded together (all of them when None); callers that sort prompts by length
    first waste less compute on padding. `progress(n)` is called after each batch with its number of prompts
    (a progress bar's `update`). The model runs in eval mode under `torch.inference_mode()` and is put back
    in the mode it was in.
    """
    _check_arguments(model, prompts, max_new_tokens, min_new_tokens, no_repeat_ngram, batch_size)
    if max_new_tokens == 0:
        return [[] for _ in prompts]
    search = search or greedy
    batch_size = batch_size or len(prompts)
    was_training = model.training
    model.eval()
    outputs = []
    try:
        with torch.inference_mode():
            for start in range(0, len(prompts), batch_size):
                input_ids, attention_mask = left_pad(prompts[start:start + batch_size], pad_id,
                                                     model.lm_head.weight.device)
                outputs += search(model, input_ids, attention_mask, eos_id=eos_id, max_new_tokens=max_new_tokens,
                                  min_new_tokens=min_new_tokens, no_repeat_ngram=no_repeat_ngram)
                if progress is not None:
                    progress(input_ids.shape[0])
    finally:
        model.train(was_training)
    return outputs


def left_pad(prompts: list[list[int]], pad_id: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Token lists → `(input_ids, attention_mask)`, both (B, T), padded on the left so every row ends together."""
    length = max(len(p) for p in prompts)
    input_ids = torch.full((len(prompts), length), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(prompts), length), dtype=torch.long)
    for row, prompt in enumerate(prompts):
        input_ids[row, length - len(prompt):] = torch.tensor(prompt, dtype=torch.long)
        attention_mask[row, length - len(prompt):] = 1
    return input_ids.to(device), attention_mask.to(device)


def prefill(model, input_ids: torch.Tensor, attention_mask: torch.Tensor):
    """Run the whole left-padded prompt (B, T), soft prompt or prefix included, into a fresh KV cache.

    Returns `(log_probs, full_mask, cache)`: each row's next-token log-probs (B, V) in float32, the attention
    mask over everything now in the cache (B, P+T), and the cache, which `decode_step` continues."""
    cache = DynamicCache(config=model.config)
    hidden, full_mask, cache = body(model, input_ids, attention_mask, cache)  # (B, T, C), (B, P+T)
    return _log_probs(model, hidden), full_mask, cache


def decode_step(model, tokens: torch.Tensor, full_mask: torch.Tensor, cache):
    """Feed one new token per row (B,) through the cache; returns `(log_probs, full_mask, cache)` as `prefill`
    does, the mask one column longer. The rows must be those of `full_mask` and the cache (reorder both first)."""
    full_mask = torch.cat([full_mask, full_mask.new_ones((full_mask.shape[0], 1))], dim=1)  # (B, S+1)
    # The new token's position is the number of real tokens before it: soft prompt or prefix + prompt + generated.
    position_ids = full_mask.sum(-1, keepdim=True) - 1  # (B, 1)
    hidden, full_mask, cache = body(model, tokens[:, None], full_mask, cache, position_ids=position_ids)
    return _log_probs(model, hidden), full_mask, cache


def _log_probs(model, hidden: torch.Tensor) -> torch.Tensor:
    """(B, T, C) hidden states → (B, V) float32 log-probs of the token after the last position."""
    return F.log_softmax(model.lm_head(hidden[:, -1]).float(), dim=-1)


def ban_tokens(log_probs: torch.Tensor, histories: list[list[int]], step: int, eos_id: int, min_new_tokens: int,
               no_repeat_ngram: int) -> torch.Tensor:
    """Set banned tokens of (B, V) `log_probs` to -inf in place, row b given its generated tokens `histories[b]`
    at decoding step `step`: EOS before `min_new_tokens`, tokens that would repeat an n-gram of the history."""
    if step < min_new_tokens:
        log_probs[:, eos_id] = float("-inf")
    if no_repeat_ngram > 0:
        rows, tokens = [], []
        for row, history in enumerate(histories):
            for token in repeated_ngram_tokens(history, no_repeat_ngram):
                rows.append(row)
                tokens.append(token)
        if rows:
            log_probs[rows, tokens] = float("-inf")
    return log_probs


def repeated_ngram_tokens(history: list[int], n: int) -> set[int]:
    """Tokens that, appended to `history`, would complete an n-gram already in it."""
    if len(history) < n:
        return set()
    if n == 1:
        return set(history)
    tail = history[len(history) - n + 1:]  # the n-1 tokens the next one would extend
    return {history[i + n - 1] for i in range(len(history) - n + 1) if history[i:i + n - 1] == tail}


def greedy(model, input_ids, attention_mask, *, eos_id, max_new_tokens, min_new_tokens, no_repeat_ngram):
    """Greedy decoding of one left-padded batch; finished rows leave the batch and the cache."""
    log_probs, full_mask, cache = prefill(model, input_ids, attention_mask)
    outputs = [[] for _ in range(input_ids.shape[0])]
    alive = list(range(input_ids.shape[0]))  # which example each remaining row belongs to
    for step in range(max_new_tokens):
        ban_tokens(log_probs, [outputs[i] for i in alive], step, eos_id, min_new_tokens, no_repeat_ngram)
        next_tokens = log_probs.argmax(-1)  # (B,)
        keep = []
        for row, token in enumerate(next_tokens.tolist()):
            if token != eos_id:
                outputs[alive[row]].append(token)
                keep.append(row)
        if not keep or step == max_new_tokens - 1:
            break
        if len(keep) < len(alive):
            keep_rows = torch.tensor(keep, device=next_tokens.device)
            cache.reorder_cache(keep_rows)  # index_select on the batch dimension of every layer
            full_mask, next_tokens = full_mask[keep_rows], next_tokens[keep_rows]
            alive = [alive[row] for row in keep]
        log_probs, full_mask, cache = decode_step(model, next_tokens, full_mask, cache)
    return outputs


def decode_texts(tokenizer, generated_ids: list[list[int]]) -> list[str]:
    """Token ids → stripped strings (special tokens dropped)."""
    return [text.strip() for text in tokenizer.batch_decode(generated_ids, skip_special_tokens=True)]


def _check_arguments(model, prompts, max_new_tokens, min_new_tokens, no_repeat_ngram, batch_size):
    if not prompts:
        raise MinisummError("No prompts to generate from; pass at least one prompt.")
    if any(len(p) == 0 for p in prompts):
        raise MinisummError("A prompt is empty; every prompt needs at least one token (the article and separator).")
    for name, value, least in (("max_new_tokens", max_new_tokens, 0), ("min_new_tokens", min_new_tokens, 0),
                               ("no_repeat_ngram", no_repeat_ngram, 0)):
        if value < least:
            raise MinisummError(f"{name} must be at least {least}; got {value}.")
    if batch_size is not None and batch_size < 1:
        raise MinisummError(f"The generation batch size must be at least 1; got {batch_size}.")
    in_front = getattr(model, "soft_prompt", None) or getattr(model, "prefix", None)  # each takes P positions
    needed = max(len(p) for p in prompts) + max_new_tokens + (in_front.length if in_front is not None else 0)
    if needed > model.config.n_positions:
        raise MinisummError(f"The longest prompt, soft prompt or prefix and {max_new_tokens} new tokens need "
                            f"{needed} positions but the model has {model.config.n_positions}; shorten the prompts "
                            f"or lower max_new_tokens.")
