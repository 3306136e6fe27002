"""Bidirectional optical flow of a video with RAFT (Upscale-A-Video's `RAFT_bi.forward`).

Frames are resized (trilinear, no padding) to multiples of 8, flows are computed for every
neighbouring pair in both directions, then resized back to the frame size. Pairs are fed to
`flow_fn` in chunks: RAFT in test mode treats every pair independently (InstanceNorm and
BatchNorm-in-eval are per sample), so chunking bounds memory without changing the result; the
correlation volume alone is (H*W/64)^2 floats per pair (830 MB at 1280x720).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from ..errors import ConfigError, InputError, check_range
from ..models.raft.model import MIN_SIZE

FlowFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _round_up8(n: int) -> int:
    return -(-n // 8) * 8


def resize_flow(flow: torch.Tensor, height: int, width: int, *, fix_resize: bool = False) -> torch.Tensor:
    """Bilinearly resize flows [N, 2, h, w] to (height, width).

    Parity (default) reproduces the official `resize_flow_pytorch` QUIRK: it scales ROWS 0 and
    1 of the field by height/h and width/w (`flow[:, :, 0]`, `flow[:, :, 1]` on an N 2 h w
    tensor) and leaves the flow vectors unscaled. `fix_resize=True` scales the vectors instead:
    x (channel 0) by width/w and y (channel 1) by height/h.
    """
    h, w = flow.shape[-2:]
    if (h, w) == (height, width):
        return flow  # the official interpolation and x1.0 scaling are exact identities here
    out = F.interpolate(flow, (height, width), mode="bilinear", align_corners=False)
    if fix_resize:
        scale = torch.tensor([width / w, height / h], dtype=out.dtype, device=out.device)
        return out * scale.reshape(1, 2, 1, 1)
    out[:, :, 0] *= height / h  # QUIRK (parity): rows, not channels
    out[:, :, 1] *= width / w
    return out


def _check_frames(frames) -> tuple:
    if not isinstance(frames, torch.Tensor) or frames.dim() != 5 or frames.shape[1] != 3:
        shape = tuple(frames.shape) if isinstance(frames, torch.Tensor) else type(frames).__name__
        raise InputError(f"frames: expected a [B, 3, T, H, W] tensor in [-1, 1], got {shape}")
    b, _, t, h, w = frames.shape
    if t < 2:
        raise InputError(f"frames: flows need at least 2 frames, got T={t}")
    h8, w8 = _round_up8(h), _round_up8(w)
    if h8 < MIN_SIZE or w8 < MIN_SIZE:
        raise ConfigError("frames size (H, W)", (h, w),
                          f"H and W of at least {MIN_SIZE - 7} px (RAFT runs at {h8}x{w8}, the size rounded up "
                          f"to multiples of 8, and needs >= {MIN_SIZE}x{MIN_SIZE})",
                          hint="the official RAFT returns NaN there: its coarsest correlation level is 1 px")
    return b, t, h, w, h8, w8


def bidirectional_flows(frames: torch.Tensor, flow_fn: FlowFn, *, fix_resize: bool = False,
                        pairs_per_call: int = 8) -> tuple:
    """Flows between neighbouring frames, both ways.

    frames: [B, 3, T, H, W] in [-1, 1]. flow_fn(image1, image2) -> flow_up [N, 2, H8, W8] for
    [N, 3, H8, W8] images at multiple-of-8 sizes (e.g. a RAFT runner's "flow_up").
    Returns (flows_forward, flows_backward), each [B, 2, T-1, H, W] float32:
    forward[:, :, i] is the flow frame i -> i+1, backward[:, :, i] the flow i+1 -> i.
    """
    check_range("pairs_per_call", pairs_per_call, 1, 1 << 16, integer=True)
    b, t, h, w, h8, w8 = _check_frames(frames)
    frames = frames.float()
    if (h8, w8) != (h, w):
        # official: 5-D trilinear with T unchanged, i.e. per-frame bilinear (align_corners=False)
        frames = F.interpolate(frames, (t, h8, w8), mode="trilinear")

    n = b * (t - 1)
    # pair p in [0, 2n): p < n is forward pair (bi, ti) -> (bi, ti+1), p >= n the same pair
    # backward; (b t) order as the official rearrange.
    k = torch.arange(n, device=frames.device)
    bi, ti = k // (t - 1), k % (t - 1)
    src_b = torch.cat([bi, bi]); src_t = torch.cat([ti, ti + 1]); dst_t = torch.cat([ti + 1, ti])

    flows = torch.empty(2, b, 2, t - 1, h, w, dtype=torch.float32, device=frames.device)  # [dir, B, 2, T-1, H, W]
    for start in range(0, 2 * n, pairs_per_call):
        p = slice(start, min(start + pairs_per_call, 2 * n))
        image1 = frames[src_b[p], :, src_t[p]]  # [k, 3, H8, W8]
        image2 = frames[src_b[p], :, dst_t[p]]
        flow = flow_fn(image1, image2)
        if tuple(flow.shape) != (image1.shape[0], 2, h8, w8):
            raise InputError(f"flow_fn returned shape {tuple(flow.shape)}, expected {(image1.shape[0], 2, h8, w8)}")
        flow = resize_flow(flow.to(device=frames.device, dtype=torch.float32), h, w, fix_resize=fix_resize)
        pid = torch.arange(p.start, p.stop, device=frames.device)
        flows[pid // n, src_b[p], :, ti[pid % n]] = flow
    return flows[0], flows[1]
