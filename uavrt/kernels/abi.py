"""The kernels' C signatures and argument lists: one table for both builds.

`host.py` calls the g++ build through ctypes and `gpu.py` launches the NVRTC build with
cuLaunchKernel; both take the signature and the argument values from here, so the two cannot
drift apart. The C side of the same contract is the extern "C" functions of propagate.cu and
propagate_host.cpp (same names, same parameters). Arguments are element offsets/strides into
contiguous tensors; pointers are `data_ptr()` values (host or device addresses).
"""

from __future__ import annotations

import ctypes
from typing import NamedTuple

import torch

P, I, L, F = ctypes.c_void_p, ctypes.c_int, ctypes.c_longlong, ctypes.c_float

# prev, cur, out, flow, check, B, C, H, W, sB, sC, fB, fC, nearest, copy, fuse_w, fuse_c, alpha1, alpha2
STEP = (P, P, P, P, P, I, I, I, I, L, L, L, L, I, I, F, F, F, F)
# x, out, flow, N, C, H, W, sB, sC, fB, fC, nearest
WARP = (P, P, P, I, I, I, I, L, L, L, L, I)
# fw, bw, mask, N, H, W, fB, fC, alpha1, alpha2
CHECK = (P, P, P, I, I, I, L, L, F, F)

SIGNATURES = {
    "uav_propagate_step_f32": STEP,
    "uav_propagate_step_f16": STEP,
    "uav_flow_warp_f32": WARP,
    "uav_flow_warp_f16": WARP,
    "uav_fb_check_f32": CHECK,
}
KERNEL_NAMES = tuple(SIGNATURES)


class Call(NamedTuple):
    name: str  # extern "C" symbol, in SIGNATURES
    items: int  # (batch item, pixel) pairs: one GPU thread each
    args: tuple  # values in SIGNATURES[name] order

    @property
    def types(self) -> tuple:
        return SIGNATURES[self.name]


def _suffix(dtype: torch.dtype) -> str:
    return {torch.float32: "f32", torch.float16: "f16"}[dtype]


def step_call(y: torch.Tensor, prev_t: int, cur_t: int, flow: torch.Tensor, check: torch.Tensor, flow_t: int, *,
              nearest: bool, copy: bool, fuse_w: float, fuse_c: float, alpha1: float, alpha2: float) -> Call:
    """y[:, :, cur_t] <- step(prev=y[:, :, prev_t], cur=y[:, :, cur_t], flow[:, :, flow_t], check[:, :, flow_t]).

    y: [B, C, T, H, W] contiguous float32/float16; flow, check: [B, 2, T-1, H, W] contiguous float32.
    The output aliases cur (each pixel reads cur before writing it).
    """
    B, C, T, H, W = y.shape
    hw, es = H * W, y.element_size()
    base, fbase = y.data_ptr(), flow_t * hw * 4
    return Call(f"uav_propagate_step_{_suffix(y.dtype)}", B * hw,
                (base + prev_t * hw * es, base + cur_t * hw * es, base + cur_t * hw * es,
                 flow.data_ptr() + fbase, check.data_ptr() + fbase, B, C, H, W,
                 C * T * hw, T * hw, 2 * (T - 1) * hw, (T - 1) * hw, int(nearest), int(copy),
                 float(fuse_w), float(fuse_c), float(alpha1), float(alpha2)))


def warp_call(x: torch.Tensor, out: torch.Tensor, flow: torch.Tensor, nearest: bool) -> Call:
    """out <- x sampled along flow. x, out: [N, C, H, W] contiguous; flow: [N, 2, H, W] contiguous float32."""
    N, C, H, W = x.shape
    return Call(f"uav_flow_warp_{_suffix(x.dtype)}", N * H * W,
                (x.data_ptr(), out.data_ptr(), flow.data_ptr(), N, C, H, W, C * H * W, H * W, 2 * H * W, H * W,
                 int(nearest)))


def check_call(fw: torch.Tensor, bw: torch.Tensor, mask: torch.Tensor, alpha1: float, alpha2: float) -> Call:
    """mask <- forward/backward consistency. fw, bw: [N, 2, H, W] contiguous float32; mask: [N, 1, H, W] float32."""
    N, _, H, W = fw.shape
    return Call("uav_fb_check_f32", N * H * W,
                (fw.data_ptr(), bw.data_ptr(), mask.data_ptr(), N, H, W, 2 * H * W, H * W, float(alpha1),
                 float(alpha2)))
