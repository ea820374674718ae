"""The label loss with the last block computed at the labelled positions only: `minisumm.loss`, faster.

`minisumm.loss.label_loss` runs every block at every position and then applies the LM head at the N
labelled positions (the summary and its EOS). The LAST block can be cut down too: its keys and values must
cover every position (each summary token attends to the whole article), but its queries, attention, MLP
and ln_f are needed at the labelled positions only:

    blocks 0 … L-2 at all T positions ──► block L-1: ln_1, c_attn (K, V) at all T
                                           queries, attention, c_proj, MLP, ln_f at the N labelled ──► lm_head

On CNN/DM-shaped batches (~944 article + ~80 summary tokens) that skips most of the last block's time and
memory, forward and backward. A prefix (`minisumm.methods.prefix`) reaches every block through the cache
that `minisumm.model.with_prefix` makes, the last block's keys and values included. The loss and gradients
equal the plain path's (tests/test_loss.py); dropout draws the same distribution, only over fewer positions.
This is the loss the training loop and evaluation run.

Each row's labelled positions go into Q slots (Q = the most labels any row has; a row with fewer fills its
spare slots with unlabelled positions, computed and then ignored by the loss). `minisumm.batching.collate`
works the slots out on the host, so their shape tells Q: nothing here makes the host wait for a GPU, forward
or backward (no `.item()`, and no boolean indexing, whose result size only the device knows).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from transformers.masking_utils import create_causal_mask

from minisumm import batching
from minisumm.batching import IGNORE_INDEX
from minisumm.model import embed, positions_from_mask, with_prefix


def label_loss(model, input_ids: torch.Tensor, attention_mask: torch.Tensor | None, labels: torch.Tensor,
               label_slots: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """`minisumm.loss.label_loss`, the same sum and count, computed through `labelled_hidden`.

    `label_slots` (B, Q), from `minisumm.batching.collate`, say where the labels are; without them they are
    found here, which makes the host wait for the device. `attention_mask` None: a right-padded batch, as
    `minisumm.model.body` explains. With both given, nothing here waits for the device."""
    targets = labels[:, 1:]  # (B, T-1)
    if label_slots is None:
        label_slots = torch.from_numpy(batching.label_slots(labels.cpu().numpy())).to(labels.device)  # (B, Q)
    hidden = labelled_hidden(model, input_ids, attention_mask, label_slots)  # (B, Q, C)
    logits = model.lm_head(hidden)  # (B, Q, V): only the labelled positions (and spare slots)
    slot_targets = targets.gather(1, label_slots)  # (B, Q): spare slots hold IGNORE_INDEX
    loss_sum = F.cross_entropy(logits.flatten(0, 1).float(), slot_targets.flatten(), ignore_index=IGNORE_INDEX,
                               reduction="sum")
    return loss_sum, (targets != IGNORE_INDEX).sum()


def labelled_hidden(model, input_ids: torch.Tensor, attention_mask: torch.Tensor | None, slots: torch.Tensor
                    ) -> torch.Tensor:
    """Final hidden states (B, Q, C) at the positions `slots` (B, Q) of each row (`minisumm.batching.label_slots`).

    The same computation as `model.body(...)[0].gather(1, slots)`, with the last block worked out at those
    positions only (module docstring). Training path: no KV cache. Activation checkpointing, when enabled,
    applies to blocks 0 … L-2 (the last block's saved tensors are small: its attention is Q × T, not T × T).
    """
    transformer = model.transformer
    embeds, attention_mask, prompt = embed(model, input_ids, attention_mask)  # (B, P+T, C), (B, P+T)
    slots = slots + prompt  # the prompt's outputs are never labelled
    attention_mask, cache = with_prefix(model, attention_mask)  # a prefix: (B, P+T) and a cache holding it
    if attention_mask is None:  # right padding: every position counts, numbered on from a prefix's P
        start = model.prefix.length if cache is not None else 0
        positions = torch.arange(start, start + embeds.shape[1], device=embeds.device)[None]  # (1, T')
    else:
        positions = positions_from_mask(attention_mask)[:, -embeds.shape[1]:]  # (B, T')
    hidden = transformer.drop(embeds + transformer.wpe(positions))  # (B, T', C)
    # no position_ids: with neither mask nor cache, transformers would read them to look for packed sequences
    causal_mask = create_causal_mask(config=model.config, inputs_embeds=embeds, attention_mask=attention_mask,
                                     cache=cache, position_ids=None)  # None when causal alone will do
    for block in transformer.h[:-1]:  # the cache goes in by position: checkpointing keeps it (it never grows)
        hidden = block(hidden, cache, causal_mask, position_ids=positions)
    last = transformer.h[-1]
    prefix_kv = cache.layers[last.attn.layer_idx] if cache is not None else None
    hidden = last_block_at(last, hidden, attention_mask, slots, prefix_kv)  # (B, Q, C)
    return transformer.ln_f(hidden)


def last_block_at(block, x: torch.Tensor, attention_mask: torch.Tensor | None, slots: torch.Tensor, prefix_kv=None
                  ) -> torch.Tensor:
    """A GPT-2 block's output (B, Q, C) at the positions `slots` (B, Q); x (B, T, C) is its input.

    Keys and values come from every position; queries and everything after attention from the Q slots only
    (spare slots are computed and then ignored by the caller). `prefix_kv`, a prefix's cache layer for this
    block, puts its P keys and values first; `attention_mask`, when given, is then (B, P+T).
    """
    B, T, C = x.shape
    Q = slots.shape[1]
    attn = block.attn
    H = attn.num_heads
    if Q == 0:  # nothing labelled: an empty (B, 0, C) result, still part of the graph
        return x[:, :0]

    def gather(t):  # (B, T, D) → (B, Q, D)
        return t.gather(1, slots[..., None].expand(-1, -1, t.shape[-1]))

    def heads(t):  # (B, L, C) → (B, H, L, C/H)
        return t.view(B, t.shape[1], H, C // H).transpose(1, 2)

    query, key, value = attn.c_attn(block.ln_1(x)).split(C, dim=2)  # (B, T, C) each; the wrapper's LoRA too
    key, value = heads(key), heads(value)  # (B, H, T, C/H)
    if prefix_kv is not None:
        key, value = prefix_kv.update(key, value)  # (B, H, P+T, C/H): the prefix's first
    P = key.shape[2] - T
    key_index = torch.arange(P + T, device=x.device)
    # slot s of row b sees the prefix and keys j <= slots[b, s] ...
    allowed = key_index <= P + slots[..., None]  # (B, Q, P+T)
    if attention_mask is not None:
        # ... that are real tokens, and always itself: a spare slot on a left-padding position then still has
        # a key (an all-masked row is NaN on some SDPA kernels)
        own = key_index == P + slots[..., None]  # (B, Q, P+T)
        allowed = allowed & (attention_mask.bool()[:, None, :] | own)
    out = F.scaled_dot_product_attention(heads(gather(query)), key, value,
                                         attn_mask=allowed[:, None],  # (B, 1, Q, P+T)
                                         dropout_p=attn.attn_dropout.p if attn.training else 0.0,
                                         scale=attn.scaling)  # (B, H, Q, C/H)
    hidden = gather(x) + attn.resid_dropout(attn.c_proj(out.transpose(1, 2).reshape(B, Q, C)))  # (B, Q, C)
    return hidden + block.mlp(block.ln_2(hidden))  # (B, Q, C)
