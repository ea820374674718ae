"""Causal attention with dropout for CPU training, in query blocks: half the work, a tenth of the memory.

GPT-2 drops 10% of its attention probabilities in training (`attn_pdrop`). PyTorch's fused CPU kernel
(`scaled_dot_product_attention`) has no dropout, so with dropout it falls back to its math path, which
forms the whole B × H × T × T score matrix (100 MB per layer at B=2, T=1,024 on GPT-2 small), draws a
random number for every entry — the future positions that the causal mask removes included — and keeps
scores, probabilities and dropped probabilities for the backward pass. On 2 CPU cores the random numbers
alone took 40% of a training step.

Here queries go in blocks of `BLOCK` rows, and block [i0, i1) only meets keys [0, i1): the others are in
its future. That is FlashAttention's tiling (Dao et al. 2022, "FlashAttention: Fast and Memory-Efficient
Exact Attention with IO-Awareness") without its online softmax, as a block's whole key range fits in memory:

    keys   0 ──────────── i1 ─────────── T
    q i0 ┌ scores (B, H, BLOCK, i1) ┐     never formed, no random numbers drawn
    q i1 └──────────────────────────┘

The forward pass keeps q, k, v, each row's log-sum-exp and the dropout mask as booleans (1 byte an entry,
lower triangle drawn); the backward pass recomputes the probabilities block by block. The result is the
same attention with the same dropout distribution: every entry that can be non-zero is kept with
probability 1-p and scaled by 1/(1-p), as in `torch.nn.functional.dropout`.

A prefix (`minisumm.methods.prefix`) puts P keys in front of the T queries' own: query i then sees keys
0 … P+i, the causal triangle shifted right by P, and block [i0, i1) meets keys [0, P+i1).

`attention_forward` is registered with transformers' AttentionInterface as "minisumm"
(`use_block_attention(model)`); it uses the blocks only where they pay (CPU, float32, training with
dropout, no KV cache that grows) and hands every other call to transformers' own SDPA function.
"""

from __future__ import annotations

import torch
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

NAME = "minisumm"
BLOCK = 64  # query rows per block: 64-256 all beat the math path on GPT-2 small; 64 was fastest on 2 cores


def draw_keep(batch: int, heads: int, length: int, p: float, device=None, prefix: int = 0) -> torch.Tensor:
    """Dropout's keep mask (B, H, T, P+T), bool: each causal entry (key <= P + query) is True with probability 1-p.

    Only the blocks that `CausalDropoutAttention` reads are drawn (the rest stays uninitialised, never read).
    """
    keep = torch.empty(batch, heads, length, prefix + length, dtype=torch.bool, device=device)
    for i0 in range(0, length, BLOCK):
        i1 = min(i0 + BLOCK, length)
        keep[:, :, i0:i1, :prefix + i1].bernoulli_(1 - p)
    return keep


class CausalDropoutAttention(torch.autograd.Function):
    """softmax(q kᵀ · scale, causal and `allowed`) with dropout (`keep`, rate p) times v, in query blocks.

    q (B, H, T, D), k, v (B, H, P+T, D) float32, a prefix's P keys first (P = 0 without); allowed
    (B, 1, T, P+T) bool or None (causal only); keep from `draw_keep`.
    """

    @staticmethod
    def forward(ctx, q, k, v, allowed, keep, p: float, scale: float):
        B, H, T, D = q.shape
        out = torch.empty_like(q)
        lse = q.new_empty(B, H, T)  # log-sum-exp of each row's scores
        for i0, i1, j1, mask in _blocks(T, k.shape[2] - T, allowed, q.device):
            scores = torch.matmul(q[:, :, i0:i1], k[:, :, :j1].transpose(-1, -2)).mul_(scale)  # (B, H, Q, j1)
            scores.masked_fill_(~mask, float("-inf"))
            row_lse = torch.logsumexp(scores, -1, keepdim=True).nan_to_num_(neginf=0.0)  # empty row: 0, not NaN
            lse[:, :, i0:i1] = row_lse[..., 0]
            probs = scores.sub_(row_lse).exp_().mul_(keep[:, :, i0:i1, :j1])  # dropped, not yet rescaled
            out[:, :, i0:i1] = torch.matmul(probs, v[:, :, :j1]).mul_(1 / (1 - p))
        ctx.save_for_backward(q, k, v, allowed, keep, lse)
        ctx.p, ctx.scale = p, scale
        return out

    @staticmethod
    def backward(ctx, grad_out):
        q, k, v, allowed, keep, lse = ctx.saved_tensors
        p, scale = ctx.p, ctx.scale
        T = q.shape[2]
        grad_q, grad_k, grad_v = torch.empty_like(q), torch.zeros_like(k), torch.zeros_like(v)
        for i0, i1, j1, mask in _blocks(T, k.shape[2] - T, allowed, q.device):
            probs = torch.matmul(q[:, :, i0:i1], k[:, :, :j1].transpose(-1, -2)).mul_(scale)  # (B, H, Q, j1)
            probs.masked_fill_(~mask, float("-inf")).sub_(lse[:, :, i0:i1, None]).exp_()  # recomputed
            block_keep = keep[:, :, i0:i1, :j1]
            g = grad_out[:, :, i0:i1]  # (B, H, Q, D)
            grad_v[:, :, :j1] += torch.matmul((probs * block_keep).transpose(-1, -2), g).mul_(1 / (1 - p))
            grad_probs = torch.matmul(g, v[:, :, :j1].transpose(-1, -2)).mul_(block_keep).mul_(1 / (1 - p))
            # softmax backward: dS = P ⊙ (dP − rowsum(dP ⊙ P))
            grad_scores = grad_probs.sub_((grad_probs * probs).sum(-1, keepdim=True)).mul_(probs).mul_(scale)
            grad_q[:, :, i0:i1] = torch.matmul(grad_scores, k[:, :, :j1])
            grad_k[:, :, :j1] += torch.matmul(grad_scores.transpose(-1, -2), q[:, :, i0:i1])
        return grad_q, grad_k, grad_v, None, None, None, None


def _blocks(length: int, prefix: int, allowed: torch.Tensor | None, device):
    """(i0, i1, j1, mask) per query block [i0, i1), which meets keys [0, j1 = P + i1); mask (B or 1, 1, Q, j1)
    bool: causal behind the prefix, and `allowed` when given."""
    causal = torch.ones(length, prefix + length, dtype=torch.bool, device=device).tril(prefix)
    for i0 in range(0, length, BLOCK):
        i1 = min(i0 + BLOCK, length)
        j1 = prefix + i1
        mask = causal[i0:i1, :j1]
        yield i0, i1, j1, mask if allowed is None else mask & allowed[:, :, i0:i1, :j1]


def attention_forward(module, query, key, value, attention_mask, dropout: float = 0.0, scaling=None, **kwargs):
    """transformers' attention-function signature; (B, H, T, D) in, (B, T, H, D) out, as its SDPA function."""
    use_blocks = (dropout > 0 and torch.is_grad_enabled() and query.device.type == "cpu"
                  and query.dtype == torch.float32 and query.shape[2] <= key.shape[2]
                  and getattr(module, "is_causal", False)
                  and (attention_mask is None or attention_mask.dtype == torch.bool))
    if not use_blocks:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout,
                                      scaling=scaling, **kwargs)
    B, H, T, D = query.shape
    scale = D ** -0.5 if scaling is None else scaling
    keep = draw_keep(B, H, T, dropout, query.device, prefix=key.shape[2] - T)  # P keys of a prefix in front
    out = CausalDropoutAttention.apply(query, key, value, attention_mask, keep, dropout, scale)  # (B, H, T, D)
    return out.transpose(1, 2).contiguous(), None


AttentionInterface.register(NAME, attention_forward)
AttentionMaskInterface.register(NAME, sdpa_mask)  # masks as for SDPA: None (causal alone) or bool, True = attend


def use_block_attention(model) -> None:
    """Route the model's attention through `attention_forward` (training on CPU with dropout benefits)."""
    model.set_attn_implementation(NAME)
