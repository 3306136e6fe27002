"""Fake CUDA on a CPU-only torch: run the GPU path through FakeTensorMode, computing nothing.

Under `torch._subclasses.fake_tensor.FakeTensorMode` tensors carry shape, dtype and device but no
data, so the real pipeline code can run "on cuda:0" on a CPU machine: a tensor on the wrong
device raises FakeTensorDeviceMismatchError, a host read of a device value (`.item()`,
`int(t)`) raises DataDependentOutputException.

What fake mode alone cannot do on the CPU build of torch 2.13 (measured), and what is done here:
- Python indexing (`x[None]`, `x[a:b] = y`) and autograd's bookkeeping open a *device guard*
  for the tensor's device; the CPU build registers none for CUDA and aborts ("PyTorch is not
  linked with support for cuda devices"). `fake_cuda()` loads a 2-line library that registers
  c10's NoOpDeviceGuardImpl for CUDA (what the meta device uses). It allocates nothing and
  computes nothing; it is only loaded into a torch built WITHOUT CUDA (a CUDA build has the real
  guard) and `torch.cuda.is_available()` stays False. Test device, never a GPU.
- `Module.to()` cannot swap fake parameters: networks are built on meta and materialised in
  place (`uavrt.models.release.build_network(..., device, dtype)`), and backends skip `.to()`
  for a module already in place.
- A release U-Net call costs ~10 s of Python dispatch in fake mode on 2 cores. `ShapeMemo`
  traces each distinct input signature (names, shapes, dtypes, devices) in full once and answers
  repeats with a fresh fake tensor of the traced output's metadata: a network is a pure function
  of its input metadata in fake mode, so the first trace proves what every repeat would. The code
  around the networks (merges, guidance, steps, propagation, decode) runs for every call.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode, _disable_current_modes
from torch.utils._pytree import tree_leaves

from ..errors import BackendUnavailable
from ..fsutil import atomic_path

GUARD_SOURCE = """\
// Registers a no-op device guard for CUDA in a CPU-only libtorch (uavrt's fake-CUDA dry run).
#include <c10/core/impl/DeviceGuardImplInterface.h>
C10_REGISTER_GUARD_IMPL(CUDA, c10::impl::NoOpDeviceGuardImpl<c10::DeviceType::CUDA>);
"""


def _cache_root() -> Path:
    root = os.environ.get("UAVRT_CACHE_DIR")
    return (Path(root).expanduser() if root else Path.home() / ".cache" / "uavrt") / "fakecuda"


def guard_library() -> Path:
    """Build (once per torch version, compiler and source; cached) the no-op CUDA guard library."""
    from torch.utils.cpp_extension import include_paths, library_paths
    cxx = shutil.which("g++")
    if cxx is None:
        raise BackendUnavailable("the fake-CUDA dry run needs g++ on PATH (apt-get install g++)")
    version = subprocess.run([cxx, "--version"], capture_output=True, text=True, check=False).stdout
    abi = int(torch._C._GLIBCXX_USE_CXX11_ABI)
    key = hashlib.sha256(f"{GUARD_SOURCE}\0{torch.__version__}\0{version}\0{abi}".encode()).hexdigest()[:16]
    path = _cache_root() / f"noop_cuda_guard-{key}.so"
    if path.exists():
        return path
    src = path.with_suffix(".cpp")
    src.parent.mkdir(parents=True, exist_ok=True)
    src.write_text(GUARD_SOURCE)
    with atomic_path(path, overwrite=True, suffix=".so") as tmp:
        cmd = [cxx, "-O1", "-shared", "-fPIC", "-std=c++17", f"-D_GLIBCXX_USE_CXX11_ABI={abi}",
               *(f"-I{p}" for p in include_paths()), str(src), *(f"-L{p}" for p in library_paths()),
               "-lc10", "-o", str(tmp)]
        res = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if res.returncode != 0:
            raise BackendUnavailable(f"building the fake-CUDA guard failed ({' '.join(cmd)}):\n{res.stderr[-3000:]}")
    return path


@functools.cache
def _enable_guard() -> str:
    if torch.version.cuda is not None:  # a CUDA build has the real guard: never replace it
        return "native"
    ctypes.CDLL(str(guard_library()), mode=ctypes.RTLD_GLOBAL)
    return "noop"


class RealHost(TorchDispatchMode):
    """Above FakeTensorMode: ops on real CPU tensors that make CPU tensors run for real.

    Fake mode alone fakes the host side too, so reading a CPU tensor (the timestep list, a
    seeded noise draw) would look like a device sync. On a GPU those are host computations with
    no sync; running them for real keeps the trace's only fake tensors the device ones, and a
    host read of a DEVICE value still fails. A real CPU tensor that meets a fake device tensor
    goes to fake mode (converted to a fake CPU tensor: a device mismatch is still caught)."""

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        from torch._subclasses.fake_tensor import FakeTensor
        kwargs = kwargs or {}
        tensors = [t for t in tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)]
        dev = kwargs.get("device")
        # meta tensors (networks being built before materialisation) are free to run for real too
        host = all(not isinstance(t, FakeTensor) and t.device.type in ("cpu", "meta") for t in tensors) and \
            (dev is None or torch.device(dev).type in ("cpu", "meta"))
        if host:
            with _disable_current_modes():
                return func(*args, **kwargs)
        return func(*args, **kwargs)


class GpuAttention(torch.overrides.TorchFunctionMode):
    """SDPA on fake CUDA tensors as a GPU runs it, not as the CPU build would.

    On the CPU build, `scaled_dot_product_attention` of fake CUDA tensors falls back to the math
    path, which materialises the [L, S] score matrix (51 GB for the release VAE's mid-block at a
    256x256 latent); on a GPU torch picks a fused kernel. Following torch's selection rules for
    inputs like the release networks' (no mask, no dropout): flash attention for fp16/bf16 with
    head dim <= 256, else memory-efficient attention. Their meta kernels give the outputs (and
    the flop counter has formulas for both)."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is torch.nn.functional.scaled_dot_product_attention:
            q, k, v = args[:3]
            mask = kwargs.get("attn_mask", args[3] if len(args) > 3 else None)
            dropout = kwargs.get("dropout_p", args[4] if len(args) > 4 else 0.0)
            causal = kwargs.get("is_causal", args[5] if len(args) > 5 else False)
            if q.device.type == "cuda" and mask is None and dropout == 0.0 and not kwargs.get("enable_gqa"):
                scale = kwargs.get("scale")
                if q.dtype in (torch.float16, torch.bfloat16) and q.shape[-1] <= 256:
                    return torch.ops.aten._scaled_dot_product_flash_attention(q, k, v, 0.0, causal, scale=scale)[0]
                return torch.ops.aten._scaled_dot_product_efficient_attention(q, k, v, None, False, 0.0, causal,
                                                                              scale=scale)[0]
        return func(*args, **kwargs)


@contextlib.contextmanager
def fake_cuda():
    """FakeTensorMode where `cuda:0` tensors work on this machine (see the module docstring);
    host-side tensor code stays real (RealHost); attention as a GPU runs it (GpuAttention)."""
    from torch._subclasses.fake_tensor import FakeTensorMode
    _enable_guard()
    with FakeTensorMode(allow_non_fake_inputs=True) as mode, RealHost(), GpuAttention():
        yield mode


def signature(args: tuple, kwargs: dict) -> tuple:
    def one(x):
        if isinstance(x, torch.Tensor):
            return ("T", tuple(x.shape), x.dtype, str(x.device), x.stride())
        return ("V", repr(x))
    return tuple(one(a) for a in args) + tuple((k, one(v)) for k, v in sorted(kwargs.items()))


class ShapeMemo(torch.nn.Module):
    """Wraps a network for the fake trace: the first call of each input signature runs the real
    forward; repeats return new fake tensors with the traced outputs' metadata.

    `observer` (optional) gets `first(name, sig)` (a context manager around each real trace: the
    memory tracker and the flop counter record per-signature costs there) and `repeat(name, sig)`."""

    def __init__(self, module: torch.nn.Module, name: str):
        super().__init__()
        self.inner = module
        # traces: signature -> (single output?, output metadata); costs: signature -> dict the
        # observer fills on the first trace (e.g. own_bytes, flops); calls: this run's counts
        object.__setattr__(self, "memo", {"name": name, "traces": {}, "costs": {}, "calls": {}, "observer": None})

    @property
    def calls(self) -> dict:
        return self.memo["calls"]

    def __getattr__(self, item):  # the wrapped network's attributes (config, raft.iters)
        try:
            return super().__getattr__(item)
        except AttributeError:
            return getattr(self._modules["inner"], item)

    def __setattr__(self, key, value):
        inner = self.__dict__.get("_modules", {}).get("inner")
        if inner is not None and key != "inner" and hasattr(inner, key) and not hasattr(type(self), key):
            setattr(inner, key, value)  # e.g. `module.iters = 12` reaches RAFT
        else:
            super().__setattr__(key, value)

    def forward(self, *args, **kwargs):
        m = self.memo
        sig = signature(args, kwargs) + (("iters", getattr(self.inner, "iters", None)),)  # RAFT's loop count
        m["calls"][sig] = m["calls"].get(sig, 0) + 1
        obs = m["observer"]
        if sig not in m["traces"]:
            cost = m["costs"][sig] = {}
            with (obs.first(m["name"], cost) if obs else contextlib.nullcontext()):
                out = self.inner(*args, **kwargs)
            outs = (out,) if isinstance(out, torch.Tensor) else tuple(out)
            m["traces"][sig] = (isinstance(out, torch.Tensor),
                                [(tuple(o.shape), o.stride(), o.dtype, o.device) for o in outs])
            return out
        if obs:
            obs.repeat(m["name"], m["costs"][sig])
        single, metas = m["traces"][sig]
        outs = tuple(torch.empty_strided(s, st, dtype=d, device=dev) for s, st, d, dev in metas)
        return outs[0] if single else outs
