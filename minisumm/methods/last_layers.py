"""Last-layers fine-tuning, and full fine-tuning, its limit.

The one idea: the lower blocks of a pretrained transformer hold general features of language, the upper
ones the task-specific mapping to the next token, so train only the last N blocks (and the final layer
norm ln_f, which sits between them and the LM head) and freeze the rest. This is the classic "freeze the
backbone, fine-tune the top" recipe of transfer learning (e.g. Howard & Ruder 2018, "Universal Language
Model Fine-tuning for Text Classification", who unfreeze from the top down).

    wte, wpe ─► block 0 … block L-N-1 ─► block L-N … block L-1 ─► ln_f ─► lm_head (= wteᵀ)
    └─────────── frozen ────────────┘   └──────── trained ───────────┘

On GPT-2 small one block holds 7,087,872 parameters and ln_f 1,536: N=2 trains 14,177,280 (11.4%).
Unlike LoRA or a soft prompt, the trained weights REPLACE pretrained ones, so a checkpoint holds the
full blocks, not a small delta.

The LM head: GPT-2 ties `lm_head.weight` to the input embedding `transformer.wte.weight` (one tensor,
38,597,376 parameters on GPT-2 small). It stays frozen by default; `train_lm_head=True` unfreezes that one
tensor, which moves the input embeddings too, and says so with a warning.

Full fine-tuning trains every parameter (124,439,808 on GPT-2 small, the tied tensor counted once).
"""

from __future__ import annotations

import warnings

from minisumm.errors import MinisummError


def unfreeze_last_layers(model, n_layers: int, train_lm_head: bool = False) -> None:
    """Set requires_grad on the last `n_layers` blocks and ln_f (and the tied head/embedding if asked)."""
    blocks = model.transformer.h
    if not 1 <= n_layers <= len(blocks):
        raise MinisummError(f"--last-layers {n_layers} is out of range: this model has {len(blocks)} blocks, "
                            f"so choose from 1 to {len(blocks)} (or --method full to train them all).")
    for block in blocks[len(blocks) - n_layers:]:
        block.requires_grad_(True)
    model.transformer.ln_f.requires_grad_(True)
    if train_lm_head:
        warnings.warn("--train-lm-head also trains the input embedding: GPT-2 ties lm_head.weight to "
                      "transformer.wte.weight (one tensor).", stacklevel=3)
        model.lm_head.weight.requires_grad_(True)


def unfreeze_all(model) -> None:
    model.requires_grad_(True)
