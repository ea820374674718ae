"""A training step makes the host wait for the device a fixed, small number of times, however many
micro-batches it accumulates (issue 20): each wait stops the host from queueing the next kernels.

Counted on CPU with `HostSyncs` (tests/host_syncs.py: values read on the host, value-dependent sizes such as
boolean indexing, tensors made from Python lists, `.tolist()`), over whole optimizer steps. Copies are not
counted: the step copies from pinned memory on a GPU, and `test_precision` checks that no copy asks for
`non_blocking` from pageable memory.
"""

import pytest

from conftest import tiny_config
from host_syncs import HostSyncs
from minisumm.tools.loading import load
from minisumm.training import setup, train_step

BUDGET = 3  # host waits per optimizer step, validation and logging aside


def waits_per_step(method, grad_accum, tmp_path) -> list[str]:
    """What one optimizer step (not the first) counted, but for two spans that a GPU would not wait in."""
    t = setup(tiny_config(method, tmp_path / f"{method}-{grad_accum}", batch_size=2, grad_accum=grad_accum,
                          max_steps=3), load=load)
    train_step(t)  # the first step collates its own micro-batches; the next ones find theirs prefetched
    aside = []  # (start, end) event indices of the spans left out
    with HostSyncs() as syncs:
        # Collating the next step: numpy arrays handed to torch (`from_numpy`, counted as a tensor made from a
        # list) in host memory, later copied to the device from pinned memory without waiting
        prefetch = t.batches.prefetch
        t.batches.prefetch = lambda step: (aside.append(syncs.count), prefetch(step), aside.append(syncs.count))
        # Off CUDA, AdamW keeps its step counts as CPU numbers and reads them (`.item()`); on CUDA it runs fused
        # on the device and reads nothing
        t.optimizer.register_step_pre_hook(lambda *_: aside.append(syncs.count))
        t.optimizer.register_step_post_hook(lambda *_: aside.append(syncs.count))
        train_step(t)
    spans = [range(start, end) for start, end in zip(aside[::2], aside[1::2])]
    return [event for i, event in enumerate(syncs.events) if not any(i in span for span in spans)]


@pytest.mark.parametrize("method", ["lora", "prompt", "prefix"])
def test_host_waits_per_step_stay_within_budget_and_do_not_grow_with_micro_batches(method, tmp_path):
    one, four = (waits_per_step(method, k, tmp_path) for k in (1, 4))
    assert len(one) <= BUDGET, one
    assert four == one  # four micro-batches wait no more often than one
