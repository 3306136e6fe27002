"""The decoder's ResNets: official `ResnetBlock3D` and `ResnetBlock3D_plus` (no time embedding).

Inputs are in the frames layout [B*T, C, H, W]; `frames` = T. The 3x3 convolutions are the
official `InflatedConv3d` (a Conv2d applied per frame), GroupNorms span the frames (see ops.py).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .ops import channels_last, to_frames, to_video, video_group_norm


class ResnetBlock3D(nn.Module):
    """norm1-SiLU-conv1-norm2-SiLU-conv2 + (1x1 conv_shortcut when channels change)."""

    def __init__(self, in_channels: int, out_channels: int | None = None, *, groups: int = 32,
                 groups_out: int | None = None, eps: float = 1e-6):
        super().__init__()
        out_channels = out_channels or in_channels
        groups_out = groups_out or groups
        self.norm1 = nn.GroupNorm(groups, in_channels, eps=eps)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.norm2 = nn.GroupNorm(groups_out, out_channels, eps=eps)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.conv_shortcut = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else None

    def forward(self, x: torch.Tensor, frames) -> torch.Tensor:
        # x: [B*T, Cin, H, W] -> [B*T, Cout, H, W]
        h = self.conv1(F.silu(video_group_norm(x, frames, self.norm1)))
        h = self.conv2(F.silu(video_group_norm(h, frames, self.norm2)))
        skip = x if self.conv_shortcut is None else self.conv_shortcut(x)
        # official: (input + hidden) / output_scale_factor, and the factor is 1.0 everywhere here
        return skip + h


class ResnetBlock3D_plus(ResnetBlock3D):  # official class name
    """ResnetBlock3D followed by a residual temporal branch: norm_3d-SiLU-Conv3d(3x3x3).

    The Conv3d pads time with zeros, so the first/last frame of every decoded chunk sees zeros:
    that is the official behaviour (chunks are decoded independently).
    """

    def __init__(self, in_channels: int, out_channels: int | None = None, *, groups: int = 32,
                 groups_out: int | None = None, eps: float = 1e-6):
        super().__init__(in_channels, out_channels, groups=groups, groups_out=groups_out, eps=eps)
        out_channels = out_channels or in_channels
        self.norm_3d = nn.GroupNorm(groups_out or groups, out_channels, eps=eps)
        self.conv_3d = nn.Conv3d(out_channels, out_channels, 3, padding=1)

    def forward(self, x: torch.Tensor, frames) -> torch.Tensor:
        x = super().forward(x, frames)
        h = F.silu(video_group_norm(x, frames, self.norm_3d))
        # Conv3d needs [B, C, T, H, W]; oneDNN's CPU Conv3d returns it contiguous whatever the
        # input's format, so it is put back channels-last (one copy, as the frames view needs).
        h = to_frames(channels_last(self.conv_3d(to_video(h, frames))))
        return x + h
