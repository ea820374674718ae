"""Which device and which precision a run uses, and how much memory it took.

Mixed precision with `torch.amp` (Micikevicius et al. 2018): on CUDA bf16 where the GPU supports it (same
exponent range as fp32, so no loss scaling), else fp16 with a `GradScaler`; fp32 on CPU unless bf16 is
asked for. Weights and optimizer state stay fp32; autocast runs matmuls in the low-precision type.
"""

from __future__ import annotations

import resource

import torch

from minisumm.errors import MinisummError


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """auto → CUDA when available (this process's GPU under torchrun), else CPU."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise MinisummError(f"--device {name} was asked for but CUDA is not available; use --device cpu.")
        if name == "cuda":
            name = f"cuda:{local_rank}"
    elif name != "cpu":
        raise MinisummError(f"--device must be cpu, cuda, cuda:N or auto; got {name!r}.")
    return torch.device(name)


def resolve_precision(precision: str, device: torch.device) -> str:
    """auto → bf16 on CUDA where supported, else fp16 (with GradScaler); fp32 on CPU."""
    if precision == "auto":
        if device.type != "cuda":
            return "fp32"
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if precision == "fp16" and device.type != "cuda":
        raise MinisummError("--precision fp16 needs a CUDA device (GradScaler); on CPU use fp32 or bf16.")
    return precision


def autocast(device: torch.device, precision: str):
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    return torch.autocast(device.type, dtype=dtype, enabled=dtype is not None)


def peak_memory_mb(device: torch.device) -> float:
    """CUDA: the most memory tensors ever held; CPU: the process's peak resident set size."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB
