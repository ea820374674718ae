"""`train.py` under a guard that makes a GPU's device rule visible on a CPU; run by torchrun in test_distributed.

On a GPU, NCCL reduces CUDA tensors only. A tensor that training code makes without naming a device lands
on the CPU, and the first collective that receives it fails. On a CPU run the default device and the
training device are the same, so the same tensor works there by accident. Two guards put the GPU's rule back:

1. Factory calls (`torch.tensor`, `torch.zeros`, ...) that minisumm's training code makes without a
   `device=` put their tensor on the "meta" device instead of the default one: a device that is not the
   training device, as the CPU is not the GPU's. (Only the modules that compute with the model's tensors
   are watched; building the model and the batches on the host and moving them is correct.)
2. Every collective (`all_reduce`, `broadcast`, ...) refuses a tensor that is not on the training device.

Each rank writes what it saw to $GUARD_REPORT_DIR/rank<R>.json: the training device, the process group's
backend and world size, how many collectives ran, whether its splits came from the token cache, the first
dropout mask its random generator would draw when training starts, and whether DDP's gradients are views
of its buckets. With GUARD_SIGNAL=R:S, rank R alone sends itself SIGTERM after optimizer step S.

    python -m torch.distributed.run --standalone --nproc_per_node=2 tests/guarded_train.py <train.py flags>
"""

import json
import os
import signal
import sys
from pathlib import Path

import torch
import torch.distributed as dist
from torch.overrides import TorchFunctionMode
from torch.utils._device import _device_constructors

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from minisumm import distributed, training  # noqa: E402
from minisumm.tools import token_cache  # noqa: E402
from minisumm.errors import run_cli  # noqa: E402
from minisumm.cli.train import main  # noqa: E402

WATCHED = {str(ROOT / "minisumm" / name) for name in
           ("training.py", "loss.py", "distributed.py", "speedups/labelled_positions.py", "speedups/block_attention.py")}
COLLECTIVES = ("all_reduce", "broadcast", "reduce", "all_gather", "all_gather_into_tensor", "reduce_scatter_tensor")
seen = {"training_device": None, "backend": None, "world_size": None, "collectives": 0}
RANK = int(os.environ.get("RANK", "0"))


class ImplicitDeviceIsMeta(TorchFunctionMode):
    """Guard 1: a factory call without `device=` from a watched module makes a meta tensor."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = dict(kwargs or {})
        if (func in _device_constructors() and kwargs.get("device") is None
                and sys._getframe(1).f_code.co_filename in WATCHED):
            kwargs["device"] = "meta"
        return func(*args, **kwargs)


def guarded(name, collective):
    """Guard 2: the collective refuses a tensor that is not on the training device."""

    def check(*args, **kwargs):
        tensors = [a for a in (*args, *kwargs.values()) if torch.is_tensor(a)]
        tensors += [t for a in (*args, *kwargs.values()) if isinstance(a, (list, tuple)) for t in a
                    if torch.is_tensor(t)]
        for tensor in tensors:
            if tensor.device != seen["training_device"]:
                raise AssertionError(f"dist.{name} received a tensor on {tensor.device}, but the run trains on "
                                     f"{seen['training_device']}: NCCL would reject it on a GPU.")
        seen["collectives"] += 1
        return collective(*args, **kwargs)

    return check


def recording_setup(device):
    info = real_setup(device)
    seen.update(training_device=torch.device(device), backend=dist.get_backend() if dist.is_initialized() else None,
                world_size=dist.get_world_size() if dist.is_initialized() else None)
    return info


def recording_tokenize(*args, **kwargs):
    splits = real_tokenize(*args, **kwargs)
    seen["from_cache"] = {name: split.from_cache for name, split in splits.items()}
    return splits


def recording_training_setup(*args, **kwargs):
    t = real_training_setup(*args, **kwargs)
    with torch.random.fork_rng():  # what the first dropout layer would draw, without drawing it
        seen["dropout_mask"] = torch.nn.functional.dropout(torch.ones(32), 0.5).nonzero().flatten().tolist()
    seen["gradient_as_bucket_view"] = getattr(t.loss_module, "gradient_as_bucket_view", None)
    return t


def signalling_train_step(t):
    step = real_train_step(t)
    if os.environ.get("GUARD_SIGNAL") == f"{RANK}:{step.step}":
        os.kill(os.getpid(), signal.SIGTERM)
    return step


real_setup, real_tokenize = distributed.setup, token_cache.tokenize_splits
real_training_setup, real_train_step = training.setup, training.train_step
distributed.setup, token_cache.tokenize_splits = recording_setup, recording_tokenize
training.setup, training.train_step = recording_training_setup, signalling_train_step
for name in COLLECTIVES:
    setattr(dist, name, guarded(name, getattr(dist, name)))

if __name__ == "__main__":
    with ImplicitDeviceIsMeta():
        probe = {"torch": torch}  # the guard is live: a device-less factory call "from training.py" gives meta
        exec(compile("made = torch.tensor(1.0)", str(ROOT / "minisumm" / "training.py"), "exec"), probe)
        assert probe["made"].is_meta, "guard 1 is not active (has torch changed how factory calls reach modes?)"
        code = run_cli(main, sys.argv[1:])
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # torchrun ends the others once one exits non-zero: report first
    report = Path(os.environ["GUARD_REPORT_DIR"]) / f"rank{RANK}.json"
    report.write_text(json.dumps({**seen, "training_device": str(seen["training_device"]), "exit": code}))
    raise SystemExit(code)
