"""Count the points where the host would wait for the device, on CPU: `with HostSyncs() as syncs: ...; syncs.count`.

On CUDA the host queues kernels and runs ahead, until an operation needs a value the device has not computed
yet; the host then waits, and the GPU idles while the host queues the next kernels. A CPU run cannot wait,
but it dispatches the same operations, so a `TorchDispatchMode` sees them:
- a tensor's value read on the host: `aten::_local_scalar_dense` (`.item()`, `int(t)`, `bool(t)`, `if t.any():`;
  under `torch.inference_mode()` the dispatcher shows `aten::item`, `aten::is_nonzero` or `aten::equal` instead);
- an output whose size depends on values: `aten::nonzero`, `aten::masked_select`, and indexing with a boolean
  mask (`aten::index` / `index_put_` with a bool index, which calls `nonzero` inside its kernel);
- a tensor made from a Python list (`aten::lift_fresh`, one dimension or more): on CUDA a blocking copy from
  pageable host memory, as when indexing with Python lists (a 0-dimensional one is a scalar argument: no copy);
- `.tolist()` and `.numpy()`, which read memory without dispatching an operator, are counted by wrapping them.
`events` lists what was counted, for the assertion messages.
"""

from __future__ import annotations

import torch
from torch.utils._python_dispatch import TorchDispatchMode

_READS = {torch.ops.aten._local_scalar_dense.default, torch.ops.aten.item.default,
          torch.ops.aten.is_nonzero.default, torch.ops.aten.equal.default,  # inference mode keeps these whole
          torch.ops.aten.nonzero.default, torch.ops.aten.masked_select.default}
_INDEXING = {torch.ops.aten.index.Tensor, torch.ops.aten.index_put_.default, torch.ops.aten.index_put.default}


class HostSyncs(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.events: list[str] = []

    @property
    def count(self) -> int:
        return len(self.events)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if func in _READS:
            self.events.append(str(func))
        elif func in _INDEXING and any(i is not None and i.dtype == torch.bool for i in args[1]):
            self.events.append(f"{func} with a boolean mask")
        elif func is torch.ops.aten.lift_fresh.default and out.dim() > 0:
            self.events.append("a tensor made from a Python list")
        return out

    def __enter__(self):
        self._wrapped = {name: getattr(torch.Tensor, name) for name in ("tolist", "numpy")}
        for name, method in self._wrapped.items():
            setattr(torch.Tensor, name, self._counting(name, method))
        return super().__enter__()

    def __exit__(self, *exc):
        for name, method in self._wrapped.items():
            setattr(torch.Tensor, name, method)
        return super().__exit__(*exc)

    def _counting(self, name, method):
        def read(tensor, *args, **kwargs):
            self.events.append(f".{name}()")
            return method(tensor, *args, **kwargs)
        return read
