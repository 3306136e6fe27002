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
from . import nvrtc

BLOCK = 256
KERNEL_NAMES = ("uav_propagate_step_f32", "uav_propagate_step_f16", "uav_flow_warp_f32", "uav_flow_warp_f16",
                "uav_fb_check_f32")

_P, _I, _L, _F = ctypes.c_void_p, ctypes.c_int, ctypes.c_longlong, ctypes.c_float
_STEP_TYPES = (_P, _P, _P, _P, _P, _I, _I, _I, _I, _L, _L, _L, _L, _I, _I, _F, _F, _F, _F)
_WARP_TYPES = (_P, _P, _P, _I, _I, _I, _I, _L, _L, _L, _L, _I)
_CHECK_TYPES = (_P, _P, _P, _I, _I, _I, _L, _L, _F, _F)


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
                     for n in KERNEL_NAMES}
    return _DeviceKernels(ctx, module, functions)


def _launch(device: torch.device, name: str, n_threads: int, types: tuple, values: tuple) -> None:
    """Launch kernel `name` with one thread per item on torch's current stream of `device`."""
    if n_threads == 0:
        return
    drv = _driver()
    index = device.index if device.index is not None else torch.cuda.current_device()
    k = _kernels(index)
    # kernelParams: an array of pointers, each to one argument's bytes (kept alive until launch returns)
    holders = [t(v) for t, v in zip(types, values, strict=True)]
    params = (ctypes.c_void_p * len(holders))(*[ctypes.addressof(h) for h in holders])
    stream = drv.CUstream(torch.cuda.current_stream(index).cuda_stream)
    grid = (n_threads + BLOCK - 1) // BLOCK
    with _bound(k.context):
        _ok(drv.cuLaunchKernel(k.functions[name], grid, 1, 1, BLOCK, 1, 1, 0, stream, ctypes.addressof(params), 0),
            f"cuLaunchKernel({name})")


def _suffix(dtype: torch.dtype) -> str:
    return {torch.float32: "f32", torch.float16: "f16"}[dtype]


# --- launchers: same arguments as the host ones (uavrt.kernels.host) -----------------------------

def step(y: torch.Tensor, prev_t: int, cur_t: int, flow: torch.Tensor, check: torch.Tensor, flow_t: int, *,
         nearest: bool, copy: bool, fuse_w: float, fuse_c: float, alpha1: float, alpha2: float) -> None:
    """y[:, :, cur_t] <- step(prev=y[:, :, prev_t], cur=y[:, :, cur_t], flow[:, :, flow_t], check[:, :, flow_t])."""
    B, C, T, H, W = y.shape
    hw, es = H * W, y.element_size()
    base, fbase = y.data_ptr(), flow_t * hw * 4
    _launch(y.device, f"uav_propagate_step_{_suffix(y.dtype)}", B * hw, _STEP_TYPES,
            (base + prev_t * hw * es, base + cur_t * hw * es, base + cur_t * hw * es,
             flow.data_ptr() + fbase, check.data_ptr() + fbase, B, C, H, W,
             C * T * hw, T * hw, 2 * (T - 1) * hw, (T - 1) * hw, int(nearest), int(copy),
             fuse_w, fuse_c, alpha1, alpha2))


def flow_warp(x: torch.Tensor, flow: torch.Tensor, nearest: bool) -> torch.Tensor:
    N, C, H, W = x.shape
    out = torch.empty_like(x)
    _launch(x.device, f"uav_flow_warp_{_suffix(x.dtype)}", N * H * W, _WARP_TYPES,
            (x.data_ptr(), out.data_ptr(), flow.data_ptr(), N, C, H, W, C * H * W, H * W, 2 * H * W, H * W,
             int(nearest)))
    return out


def fb_check(fw: torch.Tensor, bw: torch.Tensor, alpha1: float, alpha2: float) -> torch.Tensor:
    N, _, H, W = fw.shape
    mask = torch.empty((N, 1, H, W), dtype=torch.float32, device=fw.device)
    _launch(fw.device, "uav_fb_check_f32", N * H * W, _CHECK_TYPES,
            (fw.data_ptr(), bw.data_ptr(), mask.data_ptr(), N, H, W, 2 * H * W, H * W, alpha1, alpha2))
    return mask
