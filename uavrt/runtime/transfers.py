"""Host <-> device traffic and host synchronisation in a trace, located in uavrt's source.

`TransferMonitor` (a TorchDispatchMode) records every copy between the host and `device`
(`aten._to_copy`, `aten.copy_`), and every host read of a device value (`aten._local_scalar_dense`:
`.item()`, `int(t)`, `bool(t)`), with the uavrt source line that caused it and whether a step-loop
function was on the stack. A blocking host-to-device copy is a stream synchronisation in PyTorch
(pageable memory: the copy is synchronous), so a copy inside the denoising loop is a sync too.
Under FakeTensorMode the host read also fails (DataDependentOutputException); the monitor raises
`HostSync` first, naming the line.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from ..devices import resolve_device

_PKG = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # .../uavrt
_SKIP = tuple(os.path.join(_PKG, "runtime", f) for f in ("transfers.py", "fake.py", "memory.py", "dryrun.py"))
# functions whose frames make a transfer "inside the step loop"
LOOP_FUNCTIONS = frozenset({"denoise", "predict_v", "_unet_batch", "denoise_step", "run_steps"})
_COPIES = {"_to_copy.default", "copy_.default", "_copy_from.default", "_copy_from_and_resize.default"}


class HostSync(RuntimeError):
    """A host read of a device value (a device synchronisation) where none is allowed."""


@dataclass(frozen=True)
class Transfer:
    kind: str  # "h2d" | "d2h" | "sync"
    op: str
    shape: tuple
    dtype: str
    where: str  # "uavrt/runtime/pipeline.py:57 in _unet_batch: <source line>"
    in_loop: bool

    @property
    def nbytes(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n * torch.empty((), dtype=getattr(torch, self.dtype.replace("torch.", ""))).element_size()


def uavrt_location(frame=None) -> tuple:
    """(innermost uavrt source location outside the tracing machinery, step loop on the stack?)."""
    import linecache
    f = frame or sys._getframe(1)
    where, in_loop = "outside uavrt", False
    while f is not None:
        fn = os.path.abspath(f.f_code.co_filename)
        if fn.startswith(_PKG) and fn not in _SKIP:
            if where == "outside uavrt":
                line = linecache.getline(fn, f.f_lineno).strip()
                where = f"uavrt/{os.path.relpath(fn, _PKG)}:{f.f_lineno} in {f.f_code.co_name}: {line}"
            if f.f_code.co_name in LOOP_FUNCTIONS and fn.endswith(os.path.join("runtime", "pipeline.py")):
                in_loop = True
        f = f.f_back
    return where, in_loop


class TransferMonitor(TorchDispatchMode):
    """Records transfers between the host and `device`; `allow_sync=False` raises on host reads."""

    def __init__(self, device, allow_sync: bool = False):
        super().__init__()
        self.device = torch.device(device)
        self.allow_sync = allow_sync
        self.transfers: list = []

    def _record(self, kind, func, t: torch.Tensor):
        where, in_loop = uavrt_location(sys._getframe(2))
        tr = Transfer(kind, func.__name__, tuple(t.shape), str(t.dtype), where, in_loop)
        self.transfers.append(tr)
        return tr

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = func.__name__
        if self.device.type == "cpu":  # the host is the device: no copies, no syncs to find
            return func(*args, **kwargs)
        if name == "_local_scalar_dense.default" and args[0].device == self.device:
            tr = self._record("sync", func, args[0])
            if not self.allow_sync:
                raise HostSync(f"host read of a device value ({tr.op}) at {tr.where}")
        elif name in _COPIES:
            if name == "_to_copy.default":
                src, dst = args[0].device, resolve_device(kwargs.get("device") or args[0].device)
            else:  # copy_(dst, src)
                dst, src = args[0].device, args[1].device
            if src != dst and self.device in (src, dst) and "cpu" in (src.type, dst.type):
                self._record("h2d" if dst == self.device else "d2h", func, args[0])
        return func(*args, **kwargs)

    def in_loop(self) -> list:
        return [t for t in self.transfers if t.in_loop]
