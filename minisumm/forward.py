"""The one forward pass that training, evaluation and decoding share.

    token ids ──wte──► embeddings ──(soft prompt in front, if the model carries one)──► + wpe(positions)
              ──► GPT-2 blocks ──► ln_f ──► hidden states of the real tokens

Two details every caller relies on:
- Positions count real tokens only: `position_ids = attention_mask.cumsum(-1) - 1`, so a left-padded
  prompt and a right-padded training example give each token the position it would have alone. A soft
  prompt's P vectors take positions 0…P-1 and the text starts at P.
- The loss applies the LM head only where a label exists (the summary and its EOS). The article's
  `batch × length × vocab` logits (50,257 wide for GPT-2) are never formed: on CNN/DM-shaped batches this
  is most of the LM head's time and memory. The loss equals transformers' own `labels=` loss.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

IGNORE_INDEX = -100


def positions_from_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """(B, T) mask of 1 for real tokens → (B, T) positions counting real tokens only (padding gets 0)."""
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)


def body(model, input_ids: torch.Tensor, attention_mask: torch.Tensor, cache=None,
         position_ids: torch.Tensor | None = None):
    """Run GPT-2's transformer on `input_ids` (B, T), soft prompt included when the model has one.

    Returns `(hidden, attention_mask, cache)`: `hidden` (B, T, C) for the T given tokens only (the soft
    prompt's outputs are dropped), the attention mask over everything now in the cache (prompt included),
    and the KV cache when one was passed in (None otherwise). The soft prompt goes in with the first
    chunk only, when the cache is still empty; later chunks continue from the cache.
    """
    embeds = model.transformer.wte(input_ids)  # (B, T, C)
    soft_prompt = getattr(model, "soft_prompt", None)
    prefix = 0
    if soft_prompt is not None and (cache is None or cache.get_seq_length() == 0):
        embeds, attention_mask = soft_prompt.prepend(embeds, attention_mask)  # (B, P+T, C), (B, P+T)
        prefix = soft_prompt.length
        position_ids = None
    if position_ids is None:
        position_ids = positions_from_mask(attention_mask)[:, -embeds.shape[1]:]
    out = model.transformer(inputs_embeds=embeds, attention_mask=attention_mask, position_ids=position_ids,
                            cache=cache, use_cache=cache is not None)
    return out.last_hidden_state[:, prefix:], attention_mask, out.cache


def label_loss(model, input_ids: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed next-token cross-entropy over labelled positions, and how many there were.

    `labels` (B, T) follow transformers' convention: aligned with `input_ids`, -100 where no loss is
    taken, shifted here so that the hidden state at t predicts the token at t+1. Returning the sum and the
    count (not the mean) lets gradient accumulation and multi-GPU training weight every token equally.
    """
    hidden, _, _ = body(model, input_ids, attention_mask)  # (B, T, C)
    targets = labels[:, 1:]  # (B, T-1)
    keep = targets != IGNORE_INDEX
    logits = model.lm_head(hidden[:, :-1][keep])  # (N, V): only the N labelled positions
    loss_sum = F.cross_entropy(logits.float(), targets[keep], reduction="sum")
    return loss_sum, keep.sum()
