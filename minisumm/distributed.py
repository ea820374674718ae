"""Multi-GPU data parallelism with torch.distributed: who am I, and sums across processes.

`torchrun --nproc_per_node=N train.py ...` sets RANK, LOCAL_RANK and WORLD_SIZE; each process then
trains on its share of every global batch under `DistributedDataParallel`, gradients are averaged across
processes by DDP, and only rank 0 writes files. Launched by torchrun, minisumm always joins a process
group, even with one process: a one-GPU machine then runs NCCL, the DDP wrapper, rank-0 writing and the
collectives exactly as eight GPUs would. Started without torchrun, everything here is a no-op.

One backend per run: NCCL on CUDA, gloo on CPU. NCCL reduces CUDA tensors only, so every tensor handed to
a collective lives on the training device. (A `"cpu:gloo,cuda:nccl"` group would also take CPU tensors,
but it would open a second communicator for a handful of scalars that are on the GPU already: the loss
sums come out of the model there.) `tests/guarded_train.py` checks the rule on a CPU.

What must not differ between processes: where they stop (a Ctrl-C may reach one process only, or reach them
at different moments, so they agree on it: `agreed_signal`) and the world size of a resumed run
(`minisumm.tools.resume` refuses another one). What must differ: the dropout masks (`dropout_seed`).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    backend: str | None = None  # "nccl" or "gloo" once in a process group; None for a lone process

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.backend is not None


def launched() -> bool:
    """True when a launcher such as torchrun started us: it sets RANK and WORLD_SIZE, even for one process."""
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def rank() -> int:
    """This process's index among all processes (torchrun sets RANK); 0 for a single process."""
    return int(os.environ.get("RANK", "0"))


def local_rank() -> int:
    """This process's index on its machine (torchrun sets LOCAL_RANK); 0 for a single process."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def setup(device: torch.device) -> Dist:
    """Join the process group when launched by torchrun (whatever the number of processes); else a lone process."""
    if not launched():
        return Dist()
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)  # NCCL needs each process on its own GPU before the group forms
    if not dist.is_initialized():
        # device_id binds the NCCL communicator to this GPU (barriers then need not guess which one)
        dist.init_process_group(backend=backend, device_id=device if device.type == "cuda" else None)
    return Dist(rank=dist.get_rank(), local_rank=local_rank(), world_size=dist.get_world_size(), backend=backend)


def teardown(info: Dist) -> None:
    """Leave the process group together: a process that tears down while another is still in a
    collective can leave that one waiting for ever."""
    if info.enabled and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def all_sum(value: torch.Tensor, info: Dist) -> torch.Tensor:
    """Sum a tensor over all processes (returned, not in place). `value` must be on the training device."""
    if info.enabled:
        value = value.clone()
        dist.all_reduce(value, op=dist.ReduceOp.SUM)
    return value


def barrier(info: Dist) -> None:
    if info.enabled:
        dist.barrier()


def agreed_signal(received: int | None, info: Dist, device: torch.device) -> int | None:
    """The stop signal that any process received (the largest number if several), the same on every process;
    None when none did. One tiny all_reduce: every process then stops after the same step, none is left
    waiting in a collective that the others have left."""
    if info.world_size == 1:
        return received
    flag = torch.tensor(received or 0, device=device)
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return int(flag) or None


def dropout_seed(seed: int, rank: int, step: int) -> int:
    """A seed of its own for each process other than rank 0 (which keeps a lone process's random stream), at
    the start or at a resumed `step`, so that no two processes draw the same dropout masks."""
    return (seed * 1_000_003 + rank) * 1_000_003 + step


@contextlib.contextmanager
def main_process_first():
    """Rank 0 runs the block first (tokenising and filling the cache), the others after it (reading the cache):
    a barrier before the block on the others, one after it on rank 0. A no-op outside a process group."""
    others = dist.is_initialized() and dist.get_rank() != 0
    if others:
        dist.barrier()
    yield
    if dist.is_initialized() and not others:
        dist.barrier()
