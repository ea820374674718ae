"""The training objective: next-token cross-entropy on the summary and its EOS, as a sum and a count.

    hidden, _, _ = body(model, input_ids, attention_mask)   (B, T, C)   model.body: soft prompt, positions
    keep   = labels[:, 1:] != -100                           (B, T-1)    where a label exists
    logits = lm_head(hidden[:, :-1][keep])                   (N, V)      the LM head at those N positions only
    loss   = cross_entropy(logits, labels[:, 1:][keep], reduction="sum"),  N

Labels follow transformers' convention: aligned with `input_ids`, -100 (`IGNORE_INDEX`) where no loss is
taken, so the hidden state at t predicts the label at t+1. Only the summary and one EOS carry labels
(`minisumm.batching`), so the LM head runs at those N positions and the article's B × T × V logits (50,257
wide for GPT-2: 1.6 GB in fp32 for 8 × 1,024 tokens) are never formed. That is the whole idea; the rest is
bookkeeping.

Why a sum and a count, not a mean: a step accumulates several micro-batches, on several processes, whose
summaries have different lengths. Dividing every micro-batch's sum by the token count of the WHOLE step
weights every summary token the same, which is exactly the gradient of one big batch; a mean of
per-batch means would over-weight short summaries.

By default training and evaluation run `minisumm.speedups.labelled_positions.label_loss`, which computes the
same numbers and also skips most of the last block at unlabelled positions (the tests prove the two equal);
with `--no-speedups` they run this one, so a breakpoint here stops in every step and every validation.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from minisumm.batching import IGNORE_INDEX
from minisumm.device import autocast
from minisumm.errors import MinisummError
from minisumm.model import body


def label_loss(model, input_ids: torch.Tensor, attention_mask: torch.Tensor | None, labels: torch.Tensor,
               label_slots: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed next-token cross-entropy over labelled positions, and how many there were (module docstring).

    `attention_mask` None: a right-padded batch (`minisumm.model.body`). `label_slots` (from
    `minisumm.batching.collate`) serve the faster equal only; here boolean indexing finds the labels."""
    targets = labels[:, 1:]  # (B, T-1)
    keep = targets != IGNORE_INDEX  # (B, T-1)
    hidden, _, _ = body(model, input_ids, attention_mask)  # (B, T, C)
    logits = model.lm_head(hidden[:, :-1][keep])  # (N, V)
    return F.cross_entropy(logits.float(), targets[keep], reduction="sum"), keep.sum()


def loss_totals(model, batches, device: torch.device | str, precision: str = "fp32", loss_fn=label_loss
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed next-token loss over every label token of `batches`, and how many tokens that was.

    `batches` yields dicts of CPU tensors `input_ids`, `attention_mask`, `labels` (B, T) (and `label_slots`),
    right-padded as `minisumm.batching.collate` makes them: attention needs no mask then (`minisumm.model.body`).
    Sums rather than a mean, so that a caller can add them up across processes. `precision` picks autocast on the device
    ("bf16", "fp16") or none ("fp32"); `loss_fn` is `label_loss` or its faster equal. The model runs in eval
    mode (no dropout) and is put back in the mode it was in.
    """
    if precision not in ("fp32", "bf16", "fp16"):
        raise MinisummError(f"Unknown precision {precision!r} for evaluation; choose fp32, bf16 or fp16.")
    device = torch.device(device)
    was_training = model.training
    model.eval()
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    tokens = torch.zeros((), dtype=torch.long, device=device)
    try:
        with torch.no_grad(), autocast(device, precision):
            for batch in batches:
                batch = {name: t.to(device, non_blocking=t.is_pinned()) for name, t in batch.items()}
                batch_loss, batch_tokens = loss_fn(model, batch["input_ids"], None, batch["labels"],
                                                   batch.get("label_slots"))
                loss_sum += batch_loss.double()
                tokens += batch_tokens
    finally:
        model.train(was_training)
    return loss_sum, tokens


def evaluation_loss(model, batches, device: torch.device | str, precision: str = "fp32", loss_fn=label_loss
                    ) -> dict:
    """Mean next-token loss over every label token of `batches`, its perplexity, and the token count."""
    loss_sum, tokens = loss_totals(model, batches, device, precision, loss_fn)
    return loss_from_totals(float(loss_sum), int(tokens))


def loss_from_totals(loss_sum: float, n_tokens: int) -> dict:
    """`{"loss", "perplexity", "tokens"}` from a summed loss and its token count (one division, at the end)."""
    if n_tokens == 0:
        raise MinisummError("The evaluation batches hold no label tokens, so there is no loss to report; check "
                            "that the validation split is not empty and that its summaries were not cut away.")
    loss = loss_sum / n_tokens
    return {"loss": loss, "perplexity": math.exp(min(loss, 700.0)), "tokens": n_tokens}
