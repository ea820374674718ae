"""Which device and which precision a run uses, its random state, and how much memory each phase took.

Mixed precision with `torch.amp` (Micikevicius et al. 2018): on CUDA bf16 where the GPU computes it natively
(compute capability 8.0 and up: Ampere, Hopper; same exponent range as fp32, so no loss scaling), else fp16
with a `GradScaler` (V100 and T4 only emulate bf16, slower than fp16); fp32 on CPU unless bf16 or fp16 is
asked for (both run on a CPU too, slowly: that is how the tests exercise the GPU's code paths). On CUDA the
fp32 matmuls that remain (all of them with `--precision fp32`) run on TF32 tensor cores, as nanoGPT and
litgpt set it: 10 bits of mantissa in the multiply, fp32 accumulation, several times faster on Ampere+.
Weights and optimizer state stay fp32 in training; autocast runs matmuls in the low-precision type.
Decoding casts the model itself instead (`low_precision_dtype`; see `minisumm.generate`).
"""

from __future__ import annotations

import resource
from pathlib import Path

import torch

from minisumm.errors import MinisummError


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """auto → CUDA when available (this process's GPU under torchrun), else CPU. A CUDA device also turns
    on TF32 for fp32 matmuls (a process-wide switch: `torch.set_float32_matmul_precision("high")`)."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise MinisummError(f"--device {name} was asked for but CUDA is not available; use --device cpu.")
        if name == "cuda":
            name = f"cuda:{local_rank}"
        torch.set_float32_matmul_precision("high")  # TF32 tensor cores for fp32 matmuls
    elif name != "cpu":
        raise MinisummError(f"--device must be cpu, cuda, cuda:N or auto; got {name!r}.")
    return torch.device(name)


def resolve_precision(precision: str, device: torch.device) -> str:
    """auto → bf16 on a CUDA device that computes it natively, else fp16 (with GradScaler); fp32 on CPU.

    Asks `device` itself, not the current device (under torchrun each rank has its own), and not
    `torch.cuda.is_bf16_supported()`, which also says yes where bf16 is only emulated."""
    if precision == "auto":
        if device.type != "cuda":
            return "fp32"
        major, _ = torch.cuda.get_device_capability(device)
        return "bf16" if major >= 8 else "fp16"
    return precision


def low_precision_dtype(precision: str) -> torch.dtype | None:
    """"bf16" → torch.bfloat16, "fp16" → torch.float16, "fp32" → None (no autocast, no cast)."""
    return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)


def autocast(device: torch.device, precision: str):
    dtype = low_precision_dtype(precision)
    return torch.autocast(device.type, dtype=dtype, enabled=dtype is not None)


# ---------------------------------------------------------------------------------------------- random state
def rng_state(device: torch.device) -> dict[str, torch.Tensor]:
    """The random state a resumed run needs: the CPU generator's, and the GPU's when training on one."""
    state = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: dict[str, torch.Tensor], device: torch.device) -> None:
    """Restore `rng_state`'s result. A GPU state is restored only onto a GPU, and only when one was saved
    (a run saved on a CPU and resumed on a GPU keeps the GPU generator as seeded)."""
    torch.set_rng_state(state["cpu"])
    if "cuda" in state and device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda"], device)


# ---------------------------------------------------------------------------------------------- memory
_CLEAR_REFS = Path("/proc/self/clear_refs")
_STATUS = Path("/proc/self/status")


def reset_peak_memory(device: torch.device) -> None:
    """Start a new phase: the next `peak_memory_mb` reports the peak from here on.

    CUDA resets the allocator's peak; Linux resets the process's peak resident set ("5" to clear_refs).
    Elsewhere nothing can be reset and the peak stays the process's since it started."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        pass


def peak_memory_mb(device: torch.device) -> float:
    """CUDA: the most memory tensors held since the last reset; CPU: the process's peak resident set since
    then (the whole process: Python, libraries and model included). In words: `tools.console.PEAK_MEMORY_MEANS`."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):  # "VmHWM:   123456 kB", the high-water mark that clear_refs resets
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB (macOS bytes)
