"""Learning rate as a pure function of the optimizer step: linear warmup, then cosine decay to a floor.

    lr
    peak ┤    ╭──╮
         │   ╱    ╲_
         │  ╱       ╲__
     min ┤ ╱           ╲____
         └┴──────────────────► step
          0  warmup        total

The warmup of Goyal et al. 2017 and the cosine of Loshchilov & Hutter 2017 (SGDR, without restarts), in
the form nanoGPT's `get_lr` made familiar. Being a pure function of the step, resuming needs only the step.
"""

import math


def lr_at(step: int, *, peak: float, warmup_steps: int, total_steps: int, min_lr: float) -> float:
    """The learning rate for optimizer step `step` (0-based) of `total_steps`."""
    if step < warmup_steps:
        return peak * (step + 1) / warmup_steps  # reaches the peak on the last warmup step
    decay_steps = max(total_steps - warmup_steps, 1)
    progress = min((step - warmup_steps) / decay_steps, 1.0)  # 0 right after warmup → 1 at the end
    return min_lr + 0.5 * (peak - min_lr) * (1.0 + math.cos(math.pi * progress))
