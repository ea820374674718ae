"""Multi-GPU data parallelism with torch.distributed: who am I, and sums across processes.

`torchrun --nproc_per_node=N train.py ...` sets RANK, LOCAL_RANK and WORLD_SIZE; each process then
trains on its share of every global batch under `DistributedDataParallel` (NCCL on CUDA, gloo on CPU),
gradients are averaged across processes by DDP, and only rank 0 writes files. With WORLD_SIZE unset
everything here is a no-op and minisumm runs as one process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def local_rank() -> int:
    """This process's index on its machine (torchrun sets LOCAL_RANK); 0 for a single process."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def setup(device: torch.device) -> Dist:
    """Join the process group when launched by torchrun; otherwise a single process."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return Dist()
    if device.type == "cuda":
        torch.cuda.set_device(device)  # NCCL needs each process on its own GPU before the group forms
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return Dist(rank=dist.get_rank(), local_rank=local_rank(), world_size=world_size)


def teardown(info: Dist) -> None:
    """Leave the process group together: a process that tears down while another is still in a
    collective can leave that one waiting for ever."""
    if info.enabled and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def all_sum(value: torch.Tensor, info: Dist) -> torch.Tensor:
    """Sum a tensor over all processes (returned, not in place)."""
    if info.enabled:
        value = value.clone()
        dist.all_reduce(value, op=dist.ReduceOp.SUM)
    return value


def barrier(info: Dist) -> None:
    if info.enabled:
        dist.barrier()
