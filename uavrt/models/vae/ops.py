"""Layout helpers shared by the decoder modules.

The decoder keeps activations in the *frames* layout [B*T, C, H, W] (b-major, like the official
`(b t)` rearrange): every 2-D convolution then runs without a transpose. Only two things need
the video: GroupNorm, whose statistics span all frames of the chunk (official GroupNorms receive
the 5-D tensor), and the 3x3x3 Conv3d of the `_plus` ResNets.
"""

from __future__ import annotations

import torch
from torch import nn


def to_frames(video: torch.Tensor) -> torch.Tensor:
    # video: [B, C, T, H, W] -> [B*T, C, H, W]
    b, c, t, h, w = video.shape
    return video.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w)


def to_video(x: torch.Tensor, frames) -> torch.Tensor:
    # x: [B*T, C, H, W] -> [B, C, T, H, W] (a view; callers make it contiguous if they need to)
    _, c, h, w = x.shape
    return x.reshape(-1, frames, c, h, w).permute(0, 2, 1, 3, 4)


def video_group_norm(x: torch.Tensor, frames, norm: nn.GroupNorm) -> torch.Tensor:
    """nn.GroupNorm applied to the video [B, C, T, H, W], computed on the frames layout.

    x: [B*T, C, H, W]. Statistics per (batch row, group) over all T frames, H and W, exactly what
    the official 5-D GroupNorm does. Stats in float32 (no-op for the fp32 release VAE; keeps an
    fp16 run from overflowing the variance). The affine is folded into one scale/shift so the
    normalisation is a single multiply-add pass over x.
    """
    n, c, h, w = x.shape
    g = norm.num_groups
    xg = x.reshape(-1, frames, g, c // g, h * w)  # [B, T, G, C/G, HW]
    var, mean = torch.var_mean(xg.float(), dim=(1, 3, 4), correction=0, keepdim=True)  # [B, 1, G, 1, 1]
    scale = torch.rsqrt(var + norm.eps) * norm.weight.float().reshape(1, 1, g, c // g, 1)
    shift = norm.bias.float().reshape(1, 1, g, c // g, 1) - mean * scale
    y = xg * scale.to(x.dtype) + shift.to(x.dtype)
    return y.reshape(n, c, h, w)
