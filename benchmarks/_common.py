"""Helpers the training benchmarks share: machine description, per-phase peak memory, the default model.

Peak memory on CPU is the process's peak resident set (VmHWM in /proc/self/status). It only ever grows,
so a benchmark with several phases resets it between them (`echo 5 > /proc/self/clear_refs`, Linux ≥ 4.0),
after handing freed memory back to the OS (`malloc_trim`), so that each phase starts low.

glibc's allocator decides how honest that peak is. By default, after the first large frees, blocks up to
32 MiB come from its heaps and are kept for reuse: fast (no page faults once warm) but the resident set
then carries free blocks too (about 1 GB more than the tensors on a GPT-2 step). With `mallopt`
M_MMAP_THRESHOLD = 64 KiB (what `MALLOC_MMAP_THRESHOLD_=65536` sets), every block of 64 KiB or more gets its
own mapping, unmapped on free: the resident set follows the live tensors, but each step pays hundreds of
thousands of page faults (5–10% of a step's CPU time here, more for the phase that allocates more). So the benchmarks
switch at run time: `allocator_mode("fast")` (glibc's own steady state: 32 MiB / 64 MiB thresholds) for
timed steps, `allocator_mode("exact")` for the step whose peak is measured. `check_peak_reset` verifies
the method on this machine. On CUDA the caching allocator's counters are used instead.
"""

from __future__ import annotations

import ctypes
import gc
import os
import platform
import sys
from pathlib import Path

import torch
import transformers

ROOT = Path(__file__).resolve().parents[1]  # the repository root
SHARED = ROOT.parent / "shared"
SHARED_GPT2 = SHARED / "gpt2"
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt parameter numbers from glibc's malloc.h
ALLOCATOR_MODES = {"exact": (64 * 2**10, 0), "fast": (32 * 2**20, 64 * 2**20)}  # (mmap, trim) thresholds


def _libc():
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc (musl): nothing to tune or trim
        return None


def allocator_mode(mode: str) -> bool:
    """Set glibc's thresholds for "exact" peak memory or "fast" steps (module docstring); False if unsupported."""
    libc = _libc()
    if libc is None or not hasattr(libc, "mallopt"):
        return False
    mmap_threshold, trim_threshold = ALLOCATOR_MODES[mode]
    return bool(libc.mallopt(M_MMAP_THRESHOLD, mmap_threshold)) and bool(libc.mallopt(M_TRIM_THRESHOLD, trim_threshold))


def _status_mb(key: str) -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024  # the kernel reports kB
    raise RuntimeError(f"{key} not in /proc/self/status")


def current_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.memory_allocated(device) / 2**20
    return _status_mb("VmRSS")


def release_freed_memory() -> None:
    """Hand memory that glibc keeps after frees back to the OS (malloc_trim also releases mid-heap pages)."""
    gc.collect()
    libc = _libc()
    if libc is not None and hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)


def reset_peak(device: torch.device) -> None:
    release_freed_memory()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    else:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")  # 5 resets the peak resident set (VmHWM) to the current one


def peak_mb(device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) / 2**20
    return _status_mb("VmHWM")


def check_peak_reset(device: torch.device) -> dict:
    """Allocate 1 GiB in 1 MiB tensors, free it, reset: does the peak fall back? (Is the per-phase peak sound?)"""
    if device.type == "cuda":
        return {"method": "torch.cuda.max_memory_allocated after reset_peak_memory_stats", "reliable": True}
    exact = allocator_mode("exact")
    reset_peak(device)
    before = peak_mb(device)
    blocks = [torch.ones(2**18) for _ in range(1024)]  # 1,024 × 1 MiB of fp32
    with_blocks = peak_mb(device)
    del blocks
    reset_peak(device)
    after = peak_mb(device)
    allocator_mode("fast")
    reliable = exact and with_blocks - before > 900 and after - before < 100
    return {"method": "VmHWM over one extra untimed step with mallopt M_MMAP_THRESHOLD=64KiB, reset through "
                      "/proc/self/clear_refs after malloc_trim",
            "reliable": reliable, "check_mb": {"before": before, "with_1gib": with_blocks, "after_reset": after}}


def machine_info(device: torch.device) -> dict:
    info = {"torch": torch.__version__, "transformers": transformers.__version__, "python": platform.python_version(),
            "cpu_model": cpu_model(), "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads()}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
        info["cuda"] = torch.version.cuda
    return info


def cpu_model() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
