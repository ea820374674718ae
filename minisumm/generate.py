"""Batched, KV-cached greedy decoding, written out by hand over `minisumm.model.body`.

    prompts (sorted by length, batched, left-padded) ──prefill: body, empty cache──► prefix or soft prompt + prompt
        cached, next-token log-probs ──► ban_tokens, pick a token per row ──decode_step: body, 1 token, cache──►
        next log-probs ──► ... until every row has emitted EOS or max_new_tokens ──► outputs in input order

Every model call goes through `minisumm.model.body`, the same forward as training, so a soft prompt is prepended
exactly once (in the prefill, while the cache is empty), a prefix's keys and values are the cache's first P
entries, and positions count real tokens only: a left-padded prompt gives each token the position it would
have alone. Decode steps pass their position explicitly, `(real tokens so far, soft prompt or prefix
included) - 1`, read off the running attention mask.

`prefill`, `decode_step` and `ban_tokens` are the steps every search takes: `greedy` here, beam search
(`--beams K`) in `minisumm.tools.beam_search`, which `generate` runs when it is passed as `search`.

Choices made here (transformers' `generate` has flags for each):
- Prompts are decoded in batches of similar length (sorted longest first, so an out-of-memory error shows at
  once), and the outputs are put back in input order: less padding, the same tokens.
- One host wait per generated token. On a GPU the host queues kernels ahead of the device until it needs a
  value the device has not computed; each such wait idles the GPU while the next step's ~500 small kernels
  are queued. Greedy reads the step's tokens of all rows in one `.tolist()` and nothing else: the n-gram ban
  is computed on the device (`repeated_ngram_ban`), decode steps hand attention a ready (B, 1, 1, S) mask
  (transformers would otherwise ask the device whether the 2D mask holds padding, a wait per step), and
  finished rows are picked out by a device-side sort whose length the host already knows.
- Rows that have finished stay in the batch, forced to repeat EOS, until a quarter of the rows have
  finished; then they leave the batch and the cache together. Dropping each row as it finishes would copy
  the whole cache once per row; keeping all of them would drag finished rows through every step.
- `no_repeat_ngram` bans a token that would repeat an n-gram of the GENERATED text only. transformers'
  `no_repeat_ngram_size` on a decoder-only model also counts the prompt, which for summarisation forbids
  copying any three article words in a row; encoder-decoder summarisers (BART on CNN/DM) only ever see
  their own output, and we follow them.
- Precision: decoding runs in the model's own dtype. For bf16 or fp16 the caller casts the model
  (`minisumm.tools.decoding.ready_to_decode`, after merging LoRA in fp32) instead of using autocast: weights
  and KV cache take half the memory and every step reads 2-byte weights, where autocast would cast each
  frozen fp32 matrix again at every step (its cast cache keeps only tensors that require grad). Log-probs
  are taken in fp32 (`_log_probs`). On the tiny model, bf16 greedy departs from fp32 greedy only at
  near-ties (fp32 rates the two tokens within 0.1 nats; tested).
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
    Prompts are decoded longest first, `batch_size` at a time (all together when None), so similar lengths
    share a batch. `progress(n)` is called after each batch with its number of prompts (a progress bar's
    `update`). The model runs in eval mode under `torch.inference_mode()` and is put back in the mode it was in.
    """
    _check_arguments(model, prompts, max_new_tokens, min_new_tokens, no_repeat_ngram, batch_size)
    if max_new_tokens == 0:
        return [[] for _ in prompts]
    search = search or greedy
    batch_size = batch_size or len(prompts)
    order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))  # stable: equal lengths keep their order
    outputs: list[list[int]] = [[] for _ in prompts]
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                indices = order[start:start + batch_size]
                input_ids, attention_mask = left_pad([prompts[i] for i in indices], pad_id,
                                                     model.lm_head.weight.device)
                generated = search(model, input_ids, attention_mask, eos_id=eos_id, max_new_tokens=max_new_tokens,
                                   min_new_tokens=min_new_tokens, no_repeat_ngram=no_repeat_ngram)
                for index, tokens in zip(indices, generated):
                    outputs[index] = tokens
                if progress is not None:
                    progress(len(indices))
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
    # One query sees every real key: the 2D mask is the attention mask. Passed as (B, 1, 1, S+1) it goes to
    # attention as it is; given in 2D, transformers would first ask the device whether it holds any padding.
    attend = full_mask.bool()[:, None, None, :]  # (B, 1, 1, S+1)
    hidden, _, cache = body(model, tokens[:, None], attend, cache, position_ids=position_ids)
    return _log_probs(model, hidden), full_mask, cache


def _log_probs(model, hidden: torch.Tensor) -> torch.Tensor:
    """(B, T, C) hidden states → (B, V) float32 log-probs of the token after the last position."""
    return F.log_softmax(model.lm_head(hidden[:, -1]).float(), dim=-1)


def ban_tokens(log_probs: torch.Tensor, generated: torch.Tensor, step: int, eos_id: int, min_new_tokens: int,
               no_repeat_ngram: int) -> torch.Tensor:
    """Set banned tokens of (B, V) `log_probs` to -inf in place, row b having generated `generated[b]` (B, S)
    by decoding step `step`: EOS before `min_new_tokens`, tokens that would repeat an n-gram of the history."""
    if step < min_new_tokens:
        log_probs[:, eos_id] = float("-inf")
    if no_repeat_ngram > 0 and generated.shape[1] >= no_repeat_ngram:
        log_probs.masked_fill_(repeated_ngram_ban(generated, no_repeat_ngram, log_probs.shape[-1]), float("-inf"))
    return log_probs


def repeated_ngram_ban(generated: torch.Tensor, n: int, vocab: int) -> torch.Tensor:
    """(B, V) bool, True for each token that, appended to row b of `generated` (B, S), would complete an n-gram
    already in that row. Worked out on the device, with no host wait and no loop over rows:

        history  a b c a b        n = 3: the last n-1 tokens are (a b)
        starts   a b | b c | c a  the n-1 tokens at each earlier start i ... (a b) matches at i = 0
        follows  c   | a   | b    ... and the token after them there: c is banned
    """
    batch, length = generated.shape
    starts = length - n + 1  # n-grams already complete: start i covers tokens i … i+n-1
    match = torch.ones((batch, starts), dtype=torch.bool, device=generated.device)  # (B, starts)
    for k in range(n - 1):  # start i's k-th token equals the k-th of the last n-1
        match &= generated[:, k:k + starts] == generated[:, starts + k, None]
    follows = generated[:, n - 1:]  # (B, starts): the token that completes the n-gram at start i
    banned = torch.zeros((batch, vocab + 1), dtype=torch.bool, device=generated.device)  # (B, V+1)
    banned.scatter_(1, torch.where(match, follows, vocab), True)  # column V takes the starts that do not match
    return banned[:, :vocab]


def greedy(model, input_ids, attention_mask, *, eos_id, max_new_tokens, min_new_tokens, no_repeat_ngram):
    """Greedy decoding of one left-padded batch, with one host wait per token (the module docstring's choices)."""
    log_probs, full_mask, cache = prefill(model, input_ids, attention_mask)
    outputs = [[] for _ in range(input_ids.shape[0])]
    examples = list(range(input_ids.shape[0]))  # which example each row of the batch belongs to
    finished = torch.zeros(len(examples), dtype=torch.bool, device=log_probs.device)  # (B,): emitted EOS
    generated = input_ids.new_empty((len(examples), 0))  # (B, S): finished rows go on with EOS
    for step in range(max_new_tokens):
        ban_tokens(log_probs, generated, step, eos_id, min_new_tokens, no_repeat_ngram)
        next_tokens = log_probs.argmax(-1).masked_fill_(finished, eos_id)  # (B,)
        finished |= next_tokens == eos_id
        tokens = next_tokens.tolist()  # the step's one host wait: all rows together
        live = [row for row, token in enumerate(tokens) if token != eos_id]  # finished rows repeat EOS
        for row in live:
            outputs[examples[row]].append(tokens[row])
        if not live or step == max_new_tokens - 1:
            break
        generated = torch.cat([generated, next_tokens[:, None]], dim=1)  # (B, S+1)
        if 4 * len(live) <= 3 * len(examples):  # a quarter or more has finished: those rows leave batch and cache
            # the live rows first, in order, by a stable sort on the device; the host already knows how many
            keep = torch.argsort(finished.to(torch.uint8), stable=True)[:len(live)]  # (B',) = the rows in `live`
            cache.reorder_cache(keep)  # index_select on the batch dimension of every layer
            full_mask, next_tokens, generated = full_mask[keep], next_tokens[keep], generated[keep]
            finished = finished[keep]
            examples = [examples[row] for row in live]
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
