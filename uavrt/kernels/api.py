"""Public entry points of the fused propagation kernel, dispatching on the tensors' device.

Same semantics as the torch reference (uavrt.models.propagation), computed by the kernels of
propagate.h: on CPU the g++ host build, on CUDA the NVRTC build. The frame recurrence is a host
loop, one fused step (warp + occlusion mask + blend, all channels) per frame and pass. Results
are not differentiable (inference only).
"""

from __future__ import annotations

import math

import torch

from ..errors import ConfigError, InputError, check_choice, check_range
from ..models.propagation import INTERPOLATIONS, MODES, resize_flows

LATENT_DTYPES = (torch.float32, torch.float16)


def _backend(device: torch.device):
    if device.type == "cpu":
        from . import host
        return host
    if device.type == "cuda":
        from . import gpu
        return gpu
    raise InputError(f"tensors are on device {str(device)!r}; the propagation kernel runs on 'cpu' or 'cuda'")


def _check_latents(name: str, x, dims: int, layout: str) -> None:
    if not isinstance(x, torch.Tensor):
        raise InputError(f"{name} must be a torch.Tensor {layout}, got {type(x).__name__}")
    if x.dim() != dims:
        raise InputError(f"{name} has shape {tuple(x.shape)}; expected {layout}")
    if x.dtype not in LATENT_DTYPES:
        raise InputError(f"{name} has dtype {x.dtype}; expected torch.float32 or torch.float16")


def _check_flow(name: str, f, device: torch.device, layout: str) -> None:
    if not isinstance(f, torch.Tensor):
        raise InputError(f"{name} must be a torch.Tensor {layout}, got {type(f).__name__}")
    if not f.is_floating_point():
        raise InputError(f"{name} has dtype {f.dtype}; expected a floating dtype (used as float32)")
    if f.device != device:
        raise InputError(f"{name} is on {f.device} but the features are on {device}; put both on one device")


def _check_params(interpolation, mode, fuse_scale, alpha1, alpha2) -> None:
    check_choice("interpolation", interpolation, INTERPOLATIONS)
    check_choice("mode", mode, MODES)
    check_range("fuse_scale", fuse_scale, 0.0, 1.0)
    for name, a in (("alpha1", alpha1), ("alpha2", alpha2)):
        if not isinstance(a, (int, float)) or not math.isfinite(a) or a < 0:
            raise ConfigError(name, a, "a finite number >= 0")


def _flows_f32(f: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """[B, 2, T-1, Hf, Wf] any float -> [B, 2, T-1, h, w] contiguous float32 (the reference's resize)."""
    f = f.detach().to(torch.float32)
    if tuple(f.shape[-2:]) != size:  # same size: area resize and *1.0 are exact no-ops, skip them
        f = resize_flows(f, size)
    return f.contiguous()


def _check_propagate_inputs(x, flows_forward, flows_backward) -> None:
    """Types, shapes, dtypes and devices of propagate's tensors (real and fake tensors alike)."""
    _check_latents("x", x, 5, "[B, C, T, h, w]")
    if x.device.type not in ("cpu", "cuda"):
        raise InputError(f"x is on device {str(x.device)!r}; the propagation kernel runs on 'cpu' or 'cuda'")
    B, _, T, h, w = x.shape
    layout = f"[B, 2, T-1, Hf, Wf] with B={B}, T-1={T - 1}"
    for name, f in (("flows_forward", flows_forward), ("flows_backward", flows_backward)):
        _check_flow(name, f, x.device, layout)
        if f.dim() != 5 or f.shape[0] != B or f.shape[1] != 2 or f.shape[2] != T - 1 or min(f.shape[3:]) < 1:
            raise InputError(f"{name} has shape {tuple(f.shape)}; expected {layout} for x {tuple(x.shape)}")
    if flows_forward.shape != flows_backward.shape:
        raise InputError(f"flows_forward {tuple(flows_forward.shape)} and flows_backward "
                         f"{tuple(flows_backward.shape)} differ in shape")


def propagate(x: torch.Tensor, flows_forward: torch.Tensor, flows_backward: torch.Tensor, *,
              interpolation: str = "nearest", mode: str = "fuse", fuse_scale: float = 0.5,
              alpha1: float = 0.001, alpha2: float = 0.05) -> torch.Tensor:
    """Propagate latents x [B, C, T, h, w] (float32/float16) along the flows -> [B, C, T, h, w].

    flows_forward[:, :, i] maps frame i -> i+1, flows_backward[:, :, i] maps i+1 -> i, both
    [B, 2, T-1, Hf, Wf] (x, y pixels at their own resolution; resized to h, w like the reference).
    Defaults are the pipeline's call. x's dtype is kept; math is float32.

    Runs as the custom op `torch.ops.uavrt.propagate`, so it traces under FakeTensorMode (and
    torch.compile): on fake tensors it checks the inputs and returns a fake result of x's shape,
    dtype and device without launching anything.
    """
    _check_params(interpolation, mode, fuse_scale, alpha1, alpha2)
    _check_propagate_inputs(x, flows_forward, flows_backward)
    return _propagate_op(x.detach(), flows_forward.detach(), flows_backward.detach(), interpolation, mode,
                         float(fuse_scale), float(alpha1), float(alpha2))


@torch.library.custom_op("uavrt::propagate", mutates_args=())
def _propagate_op(x: torch.Tensor, flows_forward: torch.Tensor, flows_backward: torch.Tensor, interpolation: str,
                  mode: str, fuse_scale: float, alpha1: float, alpha2: float) -> torch.Tensor:
    _check_propagate_inputs(x, flows_forward, flows_backward)  # also when called as torch.ops.uavrt.propagate
    return propagate_with(_backend(x.device), x, flows_forward, flows_backward, interpolation=interpolation,
                          mode=mode, fuse_scale=fuse_scale, alpha1=alpha1, alpha2=alpha2)


@_propagate_op.register_fake
def _propagate_fake(x, flows_forward, flows_backward, interpolation, mode, fuse_scale, alpha1, alpha2):
    _check_params(interpolation, mode, fuse_scale, alpha1, alpha2)
    _check_propagate_inputs(x, flows_forward, flows_backward)
    return torch.empty_like(x, memory_format=torch.contiguous_format)


def propagate_with(launcher, x: torch.Tensor, flows_forward: torch.Tensor, flows_backward: torch.Tensor, *,
                   interpolation: str, mode: str, fuse_scale: float, alpha1: float, alpha2: float) -> torch.Tensor:
    """The frame recurrence on validated inputs, each step run by `launcher` (the module `host` or
    `gpu`: anything with their `step`). `propagate` picks the launcher from the device; tests and
    the GPU self-check name it to run gpu.py against an emulated driver."""
    B, _, T, h, w = x.shape
    y = x.detach().contiguous().clone()  # [B, C, T, h, w]: pass 1 and pass 2 both update it in place
    if T == 1 or y.numel() == 0:
        return y
    fw = _flows_f32(flows_forward, (h, w))  # [B, 2, T-1, h, w]
    bw = _flows_f32(flows_backward, (h, w))
    opts = dict(nearest=interpolation == "nearest", copy=mode == "copy", fuse_w=float(fuse_scale),
                fuse_c=float(1 - fuse_scale), alpha1=float(alpha1), alpha2=float(alpha2))

    # Pass 1 ("backward"), frames T-2 -> 0: frame i from its pass-1 successor, warped by fw[i]
    # (i -> i+1), checked against bw[i]. y[i] still holds input frame i when it is read.
    for i in range(T - 2, -1, -1):
        launcher.step(y, i + 1, i, fw, bw, i, **opts)
    # Pass 2 ("forward"), frames 1 -> T-1: frame i (its pass-1 value) from its pass-2
    # predecessor, warped by bw[i-1] (i -> i-1), checked against fw[i-1].
    for i in range(1, T):
        launcher.step(y, i - 1, i, bw, fw, i - 1, **opts)
    return y


def flow_warp(x: torch.Tensor, flow: torch.Tensor, interpolation: str = "bilinear") -> torch.Tensor:
    """Sample x [N, C, H, W] at (px + u, py + v); flow [N, H, W, 2] -> [N, C, H, W] (like the reference)."""
    check_choice("interpolation", interpolation, INTERPOLATIONS)
    _check_latents("x", x, 4, "[N, C, H, W]")
    N, _, H, W = x.shape
    _check_flow("flow", flow, x.device, "[N, H, W, 2]")
    if tuple(flow.shape) != (N, H, W, 2):
        raise InputError(f"flow has shape {tuple(flow.shape)}; expected [N, H, W, 2] = {[N, H, W, 2]} "
                         f"for x {tuple(x.shape)}")
    backend = _backend(x.device)
    planar = flow.detach().to(torch.float32).permute(0, 3, 1, 2).contiguous()  # [N, 2, H, W]
    if x.numel() == 0:
        return torch.empty_like(x)
    return backend.flow_warp(x.detach().contiguous(), planar, interpolation == "nearest")


def fb_consistency_check(flow_fw: torch.Tensor, flow_bw: torch.Tensor, alpha1: float = 0.01,
                         alpha2: float = 0.5) -> torch.Tensor:
    """Forward-backward check: flows [N, 2, H, W] -> [N, 1, H, W] float32, 1.0 where consistent."""
    _check_params("bilinear", "fuse", 0.5, alpha1, alpha2)
    for name, f in (("flow_fw", flow_fw), ("flow_bw", flow_bw)):
        _check_flow(name, f, flow_fw.device if isinstance(flow_fw, torch.Tensor) else None, "[N, 2, H, W]")
        if f.dim() != 4 or f.shape[1] != 2:
            raise InputError(f"{name} has shape {tuple(f.shape)}; expected [N, 2, H, W]")
    if flow_fw.shape != flow_bw.shape:
        raise InputError(f"flow_fw {tuple(flow_fw.shape)} and flow_bw {tuple(flow_bw.shape)} differ in shape")
    backend = _backend(flow_fw.device)
    fw = flow_fw.detach().to(torch.float32).contiguous()
    bw = flow_bw.detach().to(torch.float32).contiguous()
    if fw.numel() == 0:
        return torch.empty((fw.shape[0], 1, *fw.shape[2:]), dtype=torch.float32, device=fw.device)
    return backend.fb_check(fw, bw, float(alpha1), float(alpha2))
