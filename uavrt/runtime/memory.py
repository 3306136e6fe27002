"""Live device memory through a trace: the bytes of live tensor storages, peak per stage.

`StorageTracker` is a TorchDispatchMode: every tensor an op returns is attributed to its storage
(one storage shared by views counts once); a weakref finaliser on each tensor releases the
storage when its last tensor dies, so the count follows Python's lifetimes as the caching
allocator sees them. Works on real tensors and on fake ones (the CPU dry run of the GPU path).

Stages (`with tracker.stage("unet"):`) record the peak reached while they are the innermost
stage and the bytes already live when they began (what the window holds meanwhile).
Not counted (the planner adds a margin for them): the CUDA context, cuDNN/cuBLAS/TensorRT
workspaces, kernels' internal scratch, the caching allocator's fragmentation. Sizes are rounded
as the CUDA caching allocator rounds requests (multiples of 512 bytes) on CUDA devices.
"""

from __future__ import annotations

import contextlib
import weakref
from dataclasses import dataclass, field

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

CUDA_BLOCK = 512  # the CUDA caching allocator rounds every request up to a multiple of 512 B


def rounded(nbytes: int, device: torch.device) -> int:
    if device.type == "cuda":
        return max(CUDA_BLOCK, -(-nbytes // CUDA_BLOCK) * CUDA_BLOCK) if nbytes else 0
    return nbytes


@dataclass
class StagePeak:
    peak: int = 0  # most live bytes while this stage was innermost
    base: int = 0  # live bytes when the stage was entered (largest over its entries)
    entries: int = 0

    @property
    def own(self) -> int:
        """The stage's transient need above what was live when it began."""
        return max(self.peak - self.base, 0)


@dataclass
class MemoryTrace:
    device: str
    peak: int = 0
    stages: dict = field(default_factory=dict)  # name -> StagePeak

    def to_json(self) -> dict:
        return {"device": self.device, "peak_bytes": self.peak,
                "stages": {k: {"peak_bytes": v.peak, "base_bytes": v.base, "own_bytes": v.own, "entries": v.entries}
                           for k, v in self.stages.items()}}


class StorageTracker(TorchDispatchMode):
    """Counts live storages on `device` (type and index must match; "cuda:0" counts cuda:0)."""

    def __init__(self, device):
        super().__init__()
        self.device = torch.device(device)
        self.live: dict = {}  # storage id -> [bytes, live tensor count]
        self.total = 0
        self.trace = MemoryTrace(str(self.device))
        self._stack: list = []
        self._watches: list = []
        self._seen: set = set()  # ids of live tensors already attributed (in-place ops return them again)

    # --- stages ---------------------------------------------------------------------------------
    @contextlib.contextmanager
    def stage(self, name: str):
        s = self.trace.stages.setdefault(name, StagePeak())
        s.entries += 1
        s.base = max(s.base, self.total)
        s.peak = max(s.peak, self.total)
        self._stack.append(name)
        try:
            yield s
        finally:
            self._stack.pop()

    @contextlib.contextmanager
    def watch(self):
        """Peak of a block: yields a StagePeak filled in when the block ends (not a named stage)."""
        w = StagePeak(peak=self.total, base=self.total, entries=1)
        self._watches.append(w)
        try:
            yield w
        finally:
            self._watches.remove(w)

    def spike(self, own: int):
        """Account a transient of `own` bytes above what is live now, e.g. a memoised repeat of a
        traced network call (its outputs are created for real; its insides were traced once)."""
        self._bump(self.total + own)

    def _bump(self, level: int | None = None):
        level = self.total if level is None else level
        self.trace.peak = max(self.trace.peak, level)
        if self._stack:
            s = self.trace.stages[self._stack[-1]]
            s.peak = max(s.peak, level)
        for w in self._watches:
            w.peak = max(w.peak, level)

    # --- storages -------------------------------------------------------------------------------
    def _release(self, key, tid):
        self._seen.discard(tid)
        entry = self.live.get(key)
        if entry is None:
            return
        entry[1] -= 1
        if entry[1] == 0:
            del self.live[key]
            self.total -= entry[0]

    def _track(self, t: torch.Tensor):
        if t.device != self.device or id(t) in self._seen:
            return
        self._seen.add(id(t))
        st = t.untyped_storage()
        key = st._cdata
        entry = self.live.get(key)
        if entry is None:
            entry = self.live[key] = [rounded(st.nbytes(), self.device), 0]
            self.total += entry[0]
        entry[1] += 1
        weakref.finalize(t, self._release, key, id(t))

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_leaves(out):
            if isinstance(t, torch.Tensor):
                self._track(t)
        self._bump()
        return out


def tensor_bytes(tensors, device) -> int:
    """Bytes of the distinct storages among `tensors` on `device` (e.g. a module's weights)."""
    device = torch.device(device)
    seen, total = set(), 0
    for t in tensors:
        if t.device == device:
            st = t.untyped_storage()
            if st._cdata not in seen:
                seen.add(st._cdata)
                total += rounded(st.nbytes(), device)
    return total
