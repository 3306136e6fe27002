"""Flow-guided latent propagation (the release's `Propagation(4, learnable=False)`), in torch.

This is the REFERENCE: `uavrt.kernels.propagate` implements the same semantics as a fused
kernel and is compared against it. Keep names and signatures stable.

Semantics (README "Propagation (learnable=False)"):
- flows are area-resized to the latent size and scaled by w / w_flow (both components: a
  release quirk, see `resize_flows`);
- pass 1 ("backward") walks frames T-1 -> 0: frame i takes the pass-1 result of frame i+1,
  warped with flows_forward[i] (i -> i+1), where the forward/backward check passes;
- pass 2 ("forward") walks 0 -> T-1 over the pass-1 results: frame i takes the pass-2 result of
  frame i-1, warped with flows_backward[i-1] (i -> i-1);
- 'fuse' blends fuse_scale*warped + (1-fuse_scale)*current where valid, 'copy' takes warped;
  the first frame of each pass passes through. The output is pass 2.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import InputError, check_choice, check_range

INTERPOLATIONS = ("nearest", "bilinear")
MODES = ("fuse", "copy")
FLOW_SCALES = ("width", "per_axis")


def flow_warp(x: torch.Tensor, flow: torch.Tensor, interpolation: str = "bilinear") -> torch.Tensor:
    """Sample x at (px + u, py + v).   x: [N, C, H, W], flow: [N, H, W, 2] (u = x, v = y, pixels).

    grid_sample(align_corners=True, padding zeros): pixel centres map to -1..1 exactly, samples
    outside the frame read 0. 'nearest' rounds like PyTorch (ties to even).
    """
    check_choice("interpolation", interpolation, INTERPOLATIONS)
    if x.dim() != 4:
        raise InputError(f"x has shape {tuple(x.shape)}; expected [N, C, H, W]")
    n, _, h, w = x.shape
    if flow.dim() != 4 or tuple(flow.shape) != (n, h, w, 2):
        raise InputError(f"flow has shape {tuple(flow.shape)}; expected [N, H, W, 2] = {[n, h, w, 2]} for x {tuple(x.shape)}")
    # Sampling runs in at least float32 whatever x's dtype: a normalised fp16 grid is off by up
    # to ~0.1 px on wide latents (and flips 'nearest' picks). In fp32 this is the release's maths.
    cdt = torch.promote_types(torch.promote_types(flow.dtype, x.dtype), torch.float32)
    gy = torch.arange(h, device=x.device, dtype=cdt).view(1, h, 1)  # [1, H, 1]
    gx = torch.arange(w, device=x.device, dtype=cdt).view(1, 1, w)  # [1, 1, W]
    f = flow.to(cdt)
    # same float ops as the release: 2 * (grid + flow) / max(size - 1, 1) - 1
    vx = 2.0 * (gx + f[..., 0]) / max(w - 1, 1) - 1.0  # [N, H, W]
    vy = 2.0 * (gy + f[..., 1]) / max(h - 1, 1) - 1.0
    grid = torch.stack((vx, vy), dim=3)  # [N, H, W, 2]
    out = F.grid_sample(x.to(cdt), grid, mode=interpolation, padding_mode="zeros", align_corners=True)
    return out.to(x.dtype)


def _length_sq(f: torch.Tensor) -> torch.Tensor:  # [N, 2, H, W] -> [N, 1, H, W]
    return torch.sum(torch.square(f), dim=1, keepdim=True)


def fb_consistency_check(flow_fw: torch.Tensor, flow_bw: torch.Tensor,
                         alpha1: float = 0.01, alpha2: float = 0.5) -> torch.Tensor:
    """Forward-backward check. flow_fw, flow_bw: [N, 2, H, W] -> [N, 1, H, W], 1.0 where valid.

    valid: |fw + bw(x + fw)|^2 < alpha1 (|fw|^2 + |bw(x + fw)|^2) + alpha2, bw sampled
    bilinearly whatever the propagation's interpolation (as the release does).
    """
    bw_warped = flow_warp(flow_bw, flow_fw.permute(0, 2, 3, 1), "bilinear")  # bw(x + fw)
    diff = flow_fw + bw_warped
    thresh = alpha1 * (_length_sq(flow_fw) + _length_sq(bw_warped)) + alpha2
    return (_length_sq(diff) < thresh).to(flow_fw.dtype)


def resize_flows(flows: torch.Tensor, size, *, scale: str = "width") -> torch.Tensor:
    """Area-resize flows [B, 2, T-1, Hf, Wf] to [B, 2, T-1, h, w] (size = (h, w)) and rescale.

    scale="width" (default, release parity): BOTH components are multiplied by w / Wf. This is
    a release quirk (the y component should use h / Hf); it is invisible when the aspect ratio
    is kept and when flows already have the latent size, which is what the pipeline passes.
    scale="per_axis": the corrected behaviour, u * w / Wf and v * h / Hf.
    """
    check_choice("scale", scale, FLOW_SCALES)
    b, two, tm1, hf, wf = flows.shape
    h, w = int(size[0]), int(size[1])
    out = F.interpolate(flows, (tm1, h, w), mode="area")
    if scale == "width":
        return out * (1.0 * w / wf)
    s = torch.tensor([1.0 * w / wf, 1.0 * h / hf], dtype=out.dtype, device=out.device)
    return out * s.view(1, 2, 1, 1, 1)


def _check_inputs(x, flows_forward, flows_backward, interpolation, mode, fuse_scale, alpha1, alpha2):
    check_choice("interpolation", interpolation, INTERPOLATIONS)
    check_choice("mode", mode, MODES)
    check_range("fuse_scale", fuse_scale, 0.0, 1.0)
    check_range("alpha1", alpha1, 0.0, float("inf"))
    check_range("alpha2", alpha2, 0.0, float("inf"))
    if x.dim() != 5:
        raise InputError(f"x has shape {tuple(x.shape)}; expected [B, C, T, h, w]")
    b, _, t = x.shape[:3]
    for name, f in (("flows_forward", flows_forward), ("flows_backward", flows_backward)):
        if f.dim() != 5 or f.shape[0] != b or f.shape[1] != 2 or f.shape[2] != t - 1:
            raise InputError(f"{name} has shape {tuple(f.shape)}; expected [B, 2, T-1, Hf, Wf] with "
                             f"B={b}, T-1={t - 1} for x {tuple(x.shape)}")
    if flows_forward.shape != flows_backward.shape:
        raise InputError(f"flows_forward {tuple(flows_forward.shape)} and flows_backward "
                         f"{tuple(flows_backward.shape)} differ in shape")


def propagate(x: torch.Tensor, flows_forward: torch.Tensor, flows_backward: torch.Tensor, *,
              interpolation: str = "nearest", mode: str = "fuse", fuse_scale: float = 0.5,
              alpha1: float = 0.001, alpha2: float = 0.05) -> torch.Tensor:
    """Propagate x [B, C, T, h, w] along the flows; returns [B, C, T, h, w].

    flows_forward[:, :, i] maps frame i -> i+1, flows_backward[:, :, i] maps i+1 -> i; any
    spatial size (resized to h, w here). Defaults are the pipeline's call.
    """
    _check_inputs(x, flows_forward, flows_backward, interpolation, mode, fuse_scale, alpha1, alpha2)
    b, c, t, h, w = x.shape
    if t == 1:
        return x.clone()
    # Everything runs in at least float32 (fp16 latents come back as fp16): the recurrence
    # re-warps its own output T-1 times, and the masks compare squared flow magnitudes.
    out_dtype = x.dtype
    work = torch.promote_types(x.dtype, torch.float32)
    x = x.to(work)
    ff = resize_flows(flows_forward.to(work), (h, w))  # [B, 2, T-1, h, w]
    fb = resize_flows(flows_backward.to(work), (h, w))

    # Phase 1: all consistency masks at once (they depend on the flows only), batched over
    # (B, T-1) so the recurrences below are just warps and blends.
    ff_n = ff.permute(0, 2, 1, 3, 4).reshape(b * (t - 1), 2, h, w)  # [(B T-1), 2, h, w]
    fb_n = fb.permute(0, 2, 1, 3, 4).reshape(b * (t - 1), 2, h, w)
    mask_bwd = fb_consistency_check(ff_n, fb_n, alpha1, alpha2).reshape(b, t - 1, 1, h, w)  # pass 1
    mask_fwd = fb_consistency_check(fb_n, ff_n, alpha1, alpha2).reshape(b, t - 1, 1, h, w)  # pass 2
    ff_grid = ff.permute(0, 2, 3, 4, 1)  # [B, T-1, h, w, 2]
    fb_grid = fb.permute(0, 2, 3, 4, 1)

    def blend(prev, current, flow, mask):
        warped = flow_warp(prev, flow, interpolation)
        if mode == "fuse":
            warped = warped * fuse_scale + current * (1 - fuse_scale)
        return mask * warped + (1 - mask) * current

    # Phase 2: pass 1 ("backward"), frames T-1 -> 0, each from its successor.
    frames = [x[:, :, i] for i in range(t)]  # T x [B, C, h, w]
    pass1 = [None] * t
    pass1[t - 1] = frames[t - 1]
    for i in range(t - 2, -1, -1):
        pass1[i] = blend(pass1[i + 1], frames[i], ff_grid[:, i], mask_bwd[:, i])

    # Phase 3: pass 2 ("forward"), frames 0 -> T-1 over pass 1, each from its predecessor.
    out = [pass1[0]]
    for i in range(1, t):
        out.append(blend(out[i - 1], pass1[i], fb_grid[:, i - 1], mask_fwd[:, i - 1]))
    return torch.stack(out, dim=2).to(out_dtype)  # [B, C, T, h, w]

