"""LoRA: a trainable low-rank update beside each frozen weight (Hu et al. 2021, "LoRA: Low-Rank
Adaptation of Large Language Models", arXiv:2106.09685).

The one idea: the change a fine-tune makes to a weight matrix has low rank, so learn it as a product
of two thin matrices and leave the pretrained weight untouched.

                 ┌───────────────────────┐
    x ──────────►│ frozen Conv1D: x·W + b │──────────────┐
      │          └───────────────────────┘               ▼
      │   ┌────────────┐     ┌────────────┐            (+) ──► h
      └──►│ dropout, Aᵀ │────►│ Bᵀ · α/r   │─────────────┘
          │  in → r     │     │  r → out   │
          └────────────┘     └────────────┘

    h = x·W + b + (dropout(x)·Aᵀ·Bᵀ)·α/r        W (in, out)   A (r, in)   B (out, r)

GPT-2 stores its projections as transformers' `Conv1D`, whose weight is `(in, out)` and which computes
`x @ W + b`: the transpose of `nn.Linear`. A and B keep nn.Linear's orientation (as the paper and PEFT
do), so merging adds `(B @ A)ᵀ · α/r` to W. A starts like a linear layer (kaiming-uniform, a=√5) and B at
zero, so at step 0 the adapted model IS the base model. The forward never forms the full `(in, out)`
update: two thin products cost `r·(in + out)` per token instead of `in·out`.

Which outputs get a pair. c_attn's output is q, k, v side by side (three `n_embd`-wide thirds):
- all of q, k, v: ONE pair over the whole fused projection, A (r, 768), B (2304, r). That is exactly
  "LoRA on c_attn": r=8 on GPT-2 small trains 12 × (768·8 + 8·2304) = 294,912 parameters.
- a subset such as "qv" (the paper's GPT-2 setup): one pair per adapted third, A (r, 768), B (768, r),
  whose output lands in that third only; the other thirds get exactly the base output. r=4 on q and v:
  12 × 2 × (768·4 + 4·768) = 147,456 parameters (docs/notes.md counts every method).
Extra targets (`--lora-targets qkv,proj,mlp`) get one full-width pair each: attn.c_proj, mlp.c_fc, mlp.c_proj.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from transformers.pytorch_utils import Conv1D


class LoRAConv1D(nn.Module):
    """A frozen transformers `Conv1D` (held as `.base`) plus one LoRA pair per output slice in `parts`.

    `parts` maps a name to the `(start, stop)` output columns its pair writes to, e.g. `{"qkv": (0, 2304)}`
    or `{"q": (0, 768), "v": (1536, 2304)}`. The pairs live in `lora_A[name]` (r, in) and
    `lora_B[name]` (stop - start, r), so the state-dict keys read `...c_attn.lora_A.q`.
    """

    def __init__(self, base: Conv1D, parts: dict[str, tuple[int, int]], rank: int, alpha: float,
                 dropout: float = 0.0):
        super().__init__()
        self.base = base
        self.parts = dict(parts)
        self.rank = rank
        self.scaling = alpha / rank
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        in_features, _ = base.weight.shape  # Conv1D stores (in, out)
        like = {"device": base.weight.device, "dtype": base.weight.dtype}
        self.lora_A = nn.ParameterDict()
        self.lora_B = nn.ParameterDict()
        for name, (start, stop) in self.parts.items():
            self.lora_A[name] = nn.Parameter(torch.empty(rank, in_features, **like))  # (r, in)
            self.lora_B[name] = nn.Parameter(torch.zeros(stop - start, rank, **like))  # (width, r)
            # A as nn.Linear inits its weight, B zero: B·A starts at zero, and B's first gradient
            # (which flows through A) does not
            nn.init.kaiming_uniform_(self.lora_A[name], a=math.sqrt(5))
        self.merged = False
        self.train(base.training)  # a new module starts in training mode; follow the model's (dropout!)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.base(x)  # (B, T, out)
        if self.merged:  # the update is already inside base.weight
            return out
        x = self.dropout(x)
        out_features = out.shape[-1]
        for name, (start, stop) in self.parts.items():
            update = (x @ self.lora_A[name].T) @ self.lora_B[name].T  # (B, T, r) → (B, T, width)
            # zero columns left and right of the slice, so unadapted outputs stay exactly the base's
            out = out + F.pad(update * self.scaling, (start, out_features - stop))
        return out

    def delta_weight(self, name: str) -> torch.Tensor:
        """The pair's update in Conv1D orientation: `(B @ A)ᵀ · α/r`, shape (in, width)."""
        return (self.lora_B[name] @ self.lora_A[name]).T * self.scaling

    @torch.no_grad()
    def merge(self) -> None:
        """Add every pair's update into the frozen weight (idempotent): forward then skips the low-rank path."""
        if self.merged:
            return
        for name, (start, stop) in self.parts.items():
            self.base.weight[:, start:stop] += self.delta_weight(name).to(self.base.weight.dtype)
        self.merged = True

    @torch.no_grad()
    def unmerge(self) -> None:
        """Take the updates back out of the weight (idempotent), e.g. to train further after an evaluation."""
        if not self.merged:
            return
        for name, (start, stop) in self.parts.items():
            self.base.weight[:, start:stop] -= self.delta_weight(name).to(self.base.weight.dtype)
        self.merged = False

    def extra_repr(self) -> str:
        return f"rank={self.rank}, scaling={self.scaling:g}, parts={self.parts}"


def attention_parts(letters: str, n_embd: int) -> dict[str, tuple[int, int]]:
    """Output slices of c_attn to adapt: one pair over all of it for "qkv", else one per letter."""
    if set(letters) == set("qkv"):
        return {"qkv": (0, 3 * n_embd)}
    third = {letter: index for index, letter in enumerate("qkv")}
    return {letter: (third[letter] * n_embd, (third[letter] + 1) * n_embd) for letter in "qkv" if letter in letters}


def target_modules(model, letters: str, extras: tuple[str, ...]) -> dict[str, dict[str, tuple[int, int]]]:
    """Module path → output slices, for every Conv1D that LoRA wraps in `model` (a GPT2LMHeadModel)."""
    n_embd = model.config.n_embd
    targets = {}
    for index, block in enumerate(model.transformer.h):
        prefix = f"transformer.h.{index}"
        targets[f"{prefix}.attn.c_attn"] = attention_parts(letters, n_embd)
        if "proj" in extras:
            targets[f"{prefix}.attn.c_proj"] = {"all": (0, block.attn.c_proj.nf)}
        if "mlp" in extras:
            targets[f"{prefix}.mlp.c_fc"] = {"all": (0, block.mlp.c_fc.nf)}
            targets[f"{prefix}.mlp.c_proj"] = {"all": (0, block.mlp.c_proj.nf)}
    return targets


def add_lora(model, letters: str, extras: tuple[str, ...], rank: int, alpha: float, dropout: float) -> None:
    """Replace each targeted Conv1D of `model` by a LoRAConv1D holding it (in place)."""
    for path, parts in target_modules(model, letters, extras).items():
        parent_path, _, child = path.rpartition(".")
        parent = model.get_submodule(parent_path)
        setattr(parent, child, LoRAConv1D(getattr(parent, child), parts, rank, alpha, dropout))


def lora_modules(model) -> dict[str, LoRAConv1D]:
    return {path: module for path, module in model.named_modules() if isinstance(module, LoRAConv1D)}


def unwrap(model) -> None:
    """Merge every wrapper and put its Conv1D back in its place: a plain transformers model again."""
    for path, wrapper in lora_modules(model).items():
        wrapper.merge()
        parent_path, _, child = path.rpartition(".")
        setattr(model.get_submodule(parent_path), child, wrapper.base)
