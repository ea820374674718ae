"""A training step makes the host wait for the device a fixed, small number of times, however many
micro-batches it accumulates (issue 20): each wait stops the host from queueing the next kernels.

Counted on CPU with a TorchDispatchMode over every aten op a step runs. On a GPU these read a device tensor's
value or size on the host, so the host waits until the device has computed it: `_local_scalar_dense`
(`.item()`, `float()`, `int()`, `.tolist()`), `nonzero`, `masked_select`, and indexing with a boolean mask
(its result's size is the number of True entries); and `Tensor.tolist` and `Tensor.numpy`, which read a CPU
tensor without an aten op (on a GPU they copy it to the host first, and wait). Copies are not counted: the step copies from pinned memory
on a GPU, and `test_precision` checks that no copy asks for `non_blocking` from pageable memory.
"""

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from conftest import tiny_config
from minisumm.tools.loading import load
from minisumm.training import setup, train_step

BUDGET = 3  # host waits per optimizer step, validation and logging aside
READS = {"_local_scalar_dense", "nonzero", "masked_select", "unique", "_unique2", "argwhere", "repeat_interleave"}
INDEXING = {"index", "index_put", "index_put_", "_index_put_impl_"}


class HostWaits(TorchDispatchMode):
    """Records the name of every op that would make the host wait for a GPU (module docstring)."""

    def __init__(self):
        super().__init__()
        self.seen: list[str] = []
        self.counting = True

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.overloadpacket.__name__
        boolean_index = name in INDEXING and any(isinstance(i, torch.Tensor) and i.dtype == torch.bool
                                                 for i in args[1])
        if self.counting and (name in READS or boolean_index):
            self.seen.append(name)
        return func(*args, **(kwargs or {}))


def reading(waits, name):
    """`torch.Tensor.<name>`, recording its calls in `waits` (they dispatch no aten op the mode could see)."""
    real = getattr(torch.Tensor, name)

    def read(self, *args, **kwargs):
        if waits.counting:
            waits.seen.append(name)
        return real(self, *args, **kwargs)
    return read


def waits_per_step(method, grad_accum, tmp_path, monkeypatch) -> list[str]:
    t = setup(tiny_config(method, tmp_path / f"{method}-{grad_accum}", batch_size=2, grad_accum=grad_accum,
                          max_steps=3), load=load)
    train_step(t)  # the first step collates its own micro-batches; the next ones find theirs prefetched
    waits = HostWaits()
    for name in ("tolist", "numpy"):
        monkeypatch.setattr(torch.Tensor, name, reading(waits, name))
    with waits:
        # Off CUDA, AdamW keeps its step counts as CPU numbers and reads them (`.item()`); on CUDA it runs fused
        # on the device and reads nothing, so its reads here are not waits a GPU would see
        t.optimizer.register_step_pre_hook(lambda *_: setattr(waits, "counting", False))
        t.optimizer.register_step_post_hook(lambda *_: setattr(waits, "counting", True))
        train_step(t)
    waits.counting = False
    return waits.seen


@pytest.mark.parametrize("method", ["lora", "prompt", "prefix"])
def test_host_waits_per_step_stay_within_budget_and_do_not_grow_with_micro_batches(method, tmp_path, monkeypatch):
    one, four = (waits_per_step(method, k, tmp_path, monkeypatch) for k in (1, 4))
    assert len(one) <= BUDGET, one
    assert four == one  # four micro-batches wait no more often than one
