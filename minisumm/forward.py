"""The one forward pass that training, evaluation and decoding share.

    token ids ──wte──► embeddings ──(soft prompt in front, if the model carries one)──► + wpe(positions)
              ──► GPT-2 blocks ──► ln_f ──► hidden states of the real tokens

Two details every caller relies on:
- Positions count real tokens only: `position_ids = attention_mask.cumsum(-1) - 1`, so a left-padded
  prompt and a right-padded training example give each token the position it would have alone. A soft
  prompt's P vectors take positions 0…P-1 and the text starts at P.
- The loss needs outputs only where a label exists (the summary and its EOS), so `label_loss` computes
  only those: the LM head runs at the N labelled positions, never forming the article's
  `batch × length × vocab` logits (50,257 wide for GPT-2), and so does most of the LAST block. Its keys
  and values must cover every position (each summary token attends to the whole article), but its
  queries, attention, MLP and ln_f are needed at the labelled positions only:

      blocks 0 … L-2 at all T positions ──► block L-1: ln_1, c_attn (K, V) at all T
                                             queries, attention, c_proj, MLP, ln_f at the N labelled ──► lm_head

  On CNN/DM-shaped batches (~944 article + ~80 summary tokens) that skips most of the LM head's and the
  last block's time and memory, forward and backward. The loss equals transformers' own `labels=` loss;
  dropout draws the same distribution, only over fewer positions.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from transformers.masking_utils import create_causal_mask

IGNORE_INDEX = -100


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


def label_loss(model, input_ids: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed next-token cross-entropy over labelled positions, and how many there were.

    `labels` (B, T) follow transformers' convention: aligned with `input_ids`, -100 where no loss is
    taken, shifted here so that the hidden state at t predicts the token at t+1. Returning the sum and the
    count (not the mean) lets gradient accumulation and multi-GPU training weight every token equally.
    """
    targets = labels[:, 1:]  # (B, T-1)
    keep = targets != IGNORE_INDEX
    hidden = labelled_hidden(model, input_ids, attention_mask, F.pad(keep, (0, 1)))  # (N, C)
    logits = model.lm_head(hidden)  # (N, V): only the N labelled positions
    loss_sum = F.cross_entropy(logits.float(), targets[keep], reduction="sum")
    return loss_sum, keep.sum()


def labelled_hidden(model, input_ids: torch.Tensor, attention_mask: torch.Tensor, keep: torch.Tensor
                    ) -> torch.Tensor:
    """Final hidden states (N, C) at the N positions where `keep` (B, T) is True, in row-major order.

    The same computation as `body(...)[0][keep]`, with the last block worked out at those positions
    only (module docstring). Training path: no KV cache. Activation checkpointing, when enabled, applies
    to blocks 0 … L-2 (the last block's saved tensors are small: its attention is N × T, not T × T).
    """
    transformer = model.transformer
    embeds, attention_mask, prefix = embed(model, input_ids, attention_mask)  # (B, P+T, C), (B, P+T)
    keep = F.pad(keep, (prefix, 0))  # the prompt's outputs are never labelled
    positions = positions_from_mask(attention_mask)  # (B, T')
    hidden = transformer.drop(embeds + transformer.wpe(positions))  # (B, T', C)
    causal_mask = create_causal_mask(config=model.config, inputs_embeds=embeds, attention_mask=attention_mask,
                                     cache=None, position_ids=positions)  # None when causal alone will do
    for block in transformer.h[:-1]:
        hidden = block(hidden, None, causal_mask, position_ids=positions)
    hidden = last_block_at(transformer.h[-1], hidden, attention_mask, keep)  # (N, C)
    return transformer.ln_f(hidden)


def last_block_at(block, x: torch.Tensor, attention_mask: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """A GPT-2 block's output (N, C) at the positions where `keep` (B, T) is True; x (B, T, C) is its input.

    Keys and values come from every position; queries and everything after attention from the kept
    positions only. Each row's kept positions are gathered into Q slots (Q = the most any row keeps);
    a row with fewer fills its spare slots with other positions, computed and then dropped.
    """
    B, T, C = x.shape
    attn = block.attn
    H = attn.num_heads
    counts = keep.sum(1)  # (B,)
    Q = int(counts.max())
    if Q == 0:  # nothing labelled: an empty (0, C) result, still part of the graph
        return x[keep]
    slots = torch.argsort((~keep).to(torch.uint8), dim=1, stable=True)[:, :Q]  # (B, Q): kept positions first
    used = torch.arange(Q, device=x.device) < counts[:, None]  # (B, Q): slots holding a kept position

    def gather(t):  # (B, T, D) → (B, Q, D)
        return t.gather(1, slots[..., None].expand(-1, -1, t.shape[-1]))

    def heads(t):  # (B, L, C) → (B, H, L, C/H)
        return t.view(B, t.shape[1], H, C // H).transpose(1, 2)

    query, key, value = attn.c_attn(block.ln_1(x)).split(C, dim=2)  # (B, T, C) each; the wrapper's LoRA too
    key_index = torch.arange(T, device=x.device)
    # slot s of row b sees keys j <= slots[b, s] that are real tokens, and always itself: a spare slot on a
    # left-padding position then still has a key (an all-masked row is NaN on some SDPA kernels)
    own = key_index == slots[..., None]  # (B, Q, T)
    allowed = (key_index <= slots[..., None]) & (attention_mask.bool()[:, None, :] | own)
    out = F.scaled_dot_product_attention(heads(gather(query)), heads(key), heads(value),
                                         attn_mask=allowed[:, None],  # (B, 1, Q, T)
                                         dropout_p=attn.attn_dropout.p if attn.training else 0.0,
                                         scale=attn.scaling)  # (B, H, Q, C/H)
    hidden = gather(x) + attn.resid_dropout(attn.c_proj(out.transpose(1, 2).reshape(B, Q, C)))  # (B, Q, C)
    hidden = hidden + block.mlp(block.ln_2(hidden))
    return hidden[used]  # (N, C), row-major like x[keep]
