"""`--compile`: each GPT-2 block through `torch.compile` (TorchInductor), for training and decoding alike.

Compiling block by block rather than the whole loss keeps what varies from batch to batch out of the
compiled graphs: the labelled positions (a data-dependent shape), the soft prompt or prefix, the KV cache's
bookkeeping. The blocks are where nearly all the arithmetic is, and the compiler fuses their element-wise
work (layer norms, GELU, residual adds, dropout) into few kernels: fewer launches, which is what a small
model on a fast GPU waits on. `Module.compile` compiles in place, so parameter names, checkpoints and
optimizer state do not change. The first batches of each new shape pay for compiling (seconds to minutes),
so it pays off on long runs only; off by default.
"""

from __future__ import annotations

import torch

from minisumm.errors import MinisummError


def compile_blocks(model) -> None:
    """Compile each transformer block of `model` (a GPT-2) in place; MinisummError where torch cannot."""
    if not hasattr(torch, "compile"):
        raise MinisummError(f"--compile needs torch.compile, which torch {torch.__version__} lacks; leave "
                            f"--compile out.")
    for block in model.transformer.h:
        block.compile(dynamic=None)
