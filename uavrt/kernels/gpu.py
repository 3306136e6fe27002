"""CUDA build of the kernels: the NVRTC CUBIN loaded into torch's context, launched with the
driver API (cuda-bindings) on torch tensors' device pointers and torch's current stream.

Kernels run on torch's current stream, so they order correctly with the surrounding torch ops
without any synchronisation. Only contiguous CUDA tensors reach these functions; validation is
done by the public API.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
from dataclasses import dataclass

import torch

from ..errors import BackendUnavailable
from . import abi, nvrtc

BLOCK = 256  # threads per block; one thread per (batch item, pixel)


def _driver():
    try:
        from cuda.bindings import driver
    except ImportError as e:
        raise BackendUnavailable("the CUDA propagation kernel needs cuda-bindings: "
                                 f"pip install cuda-bindings nvidia-cuda-nvrtc ({e})") from e
    return driver


def _ok(result, what: str):
    """cuda-bindings calls return (CUresult, *values): raise on error, return the values."""
    drv = _driver()
    status, *values = result if isinstance(result, tuple) else (result,)
    if status != drv.CUresult.CUDA_SUCCESS:
        try:
            _, name = drv.cuGetErrorName(status)
            name = name.decode() if isinstance(name, bytes) else name
        except Exception:  # the name lookup must not hide the original failure
            name = str(status)
        raise RuntimeError(f"{what} failed: {name}")
    return values[0] if len(values) == 1 else values


@dataclass(frozen=True)
class _DeviceKernels:
    context: object  # CUcontext: the device's primary context (the one torch uses)
    module: object  # CUmodule
    functions: dict  # name -> CUfunction


@contextlib.contextmanager
def _bound(ctx):
    """Make `ctx` current on this thread for the block (torch's threads usually have it already)."""
    drv = _driver()
    current = _ok(drv.cuCtxGetCurrent(), "cuCtxGetCurrent")
    if int(current) == int(ctx):
        yield
        return
    _ok(drv.cuCtxPushCurrent(ctx), "cuCtxPushCurrent")
    try:
        yield
    finally:
        _ok(drv.cuCtxPopCurrent(), "cuCtxPopCurrent")


@functools.cache
def _kernels(device_index: int) -> _DeviceKernels:
    """Compile (or read from the cache) the CUBIN for this device and load it, once per device."""
    drv = _driver()
    torch.cuda.init()
    major, minor = torch.cuda.get_device_capability(device_index)
    cubin = nvrtc.cubin_for(f"sm_{major}{minor}")
    try:
        _ok(drv.cuInit(0), "cuInit")
    except Exception as e:
        raise BackendUnavailable(f"the CUDA driver could not be initialised through cuda-bindings ({e})") from e
    dev = _ok(drv.cuDeviceGet(device_index), "cuDeviceGet")
    ctx = _ok(drv.cuDevicePrimaryCtxRetain(dev), "cuDevicePrimaryCtxRetain")
    with _bound(ctx):
        module = _ok(drv.cuModuleLoadData(cubin), "cuModuleLoadData")
        functions = {n: _ok(drv.cuModuleGetFunction(module, n.encode()), f"cuModuleGetFunction({n})")
                     for n in abi.KERNEL_NAMES}
    return _DeviceKernels(ctx, module, functions)


def _launch(device: torch.device, call: abi.Call) -> None:
    """Launch `call` with one thread per item on torch's current stream of `device`."""
    if call.items == 0:
        return
    drv = _driver()
    index = device.index if device.index is not None else torch.cuda.current_device()
    k = _kernels(index)
    # kernelParams: an array of pointers, each to one argument's bytes (kept alive until launch returns)
    holders = [t(v) for t, v in zip(call.types, call.args, strict=True)]
    params = (ctypes.c_void_p * len(holders))(*[ctypes.addressof(h) for h in holders])
    stream = drv.CUstream(torch.cuda.current_stream(index).cuda_stream)
    grid = (call.items + BLOCK - 1) // BLOCK
    with _bound(k.context):
        _ok(drv.cuLaunchKernel(k.functions[call.name], grid, 1, 1, BLOCK, 1, 1, 0, stream, ctypes.addressof(params),
                               0), f"cuLaunchKernel({call.name})")


# --- launchers: same arguments as the host ones (uavrt.kernels.host); argument lists in abi.py ----

def step(y: torch.Tensor, prev_t: int, cur_t: int, flow: torch.Tensor, check: torch.Tensor, flow_t: int, *,
         nearest: bool, copy: bool, fuse_w: float, fuse_c: float, alpha1: float, alpha2: float) -> None:
    """y[:, :, cur_t] <- one propagation step (see abi.step_call); CUDA tensors."""
    _launch(y.device, abi.step_call(y, prev_t, cur_t, flow, check, flow_t, nearest=nearest, copy=copy,
                                    fuse_w=fuse_w, fuse_c=fuse_c, alpha1=alpha1, alpha2=alpha2))


def flow_warp(x: torch.Tensor, flow: torch.Tensor, nearest: bool) -> torch.Tensor:
    out = torch.empty_like(x)
    _launch(x.device, abi.warp_call(x, out, flow, nearest))
    return out


def fb_check(fw: torch.Tensor, bw: torch.Tensor, alpha1: float, alpha2: float) -> torch.Tensor:
    N, _, H, W = fw.shape
    mask = torch.empty((N, 1, H, W), dtype=torch.float32, device=fw.device)
    _launch(fw.device, abi.check_call(fw, bw, mask, alpha1, alpha2))
    return mask
