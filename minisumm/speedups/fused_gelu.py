"""GPT-2's GELU as PyTorch's one fused kernel: the same function, less memory and time.

`use_fused_gelu(model)` swaps transformers' Python-op GELU for it in every block; tests/test_model.py
checks it against transformers' own `NewGELUActivation`.
"""

from __future__ import annotations

import torch


class TanhGELU(torch.nn.Module):
    """GPT-2's activation, "gelu_new" = 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))) (Hendrycks & Gimpel 2016),
    as PyTorch's one fused kernel `F.gelu(x, approximate="tanh")`.

    transformers writes it out in Python ops (NewGELUActivation), and autograd then keeps three
    intermediate B × T × 3,072 tensors per block besides the input for the backward pass (25 MB each at
    B=2, T=1,024 in fp32), and more in flight; the fused kernel keeps only its input and runs in one pass.
    Same function, to float rounding."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.gelu(x, approximate="tanh")


def use_fused_gelu(model) -> None:
    """Give every block's MLP the fused tanh GELU, where the model uses GPT-2's "gelu_new"."""
    if model.config.activation_function != "gelu_new":
        return
    for block in model.transformer.h:
        block.mlp.act = TanhGELU()
