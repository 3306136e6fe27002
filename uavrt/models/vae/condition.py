"""vae_video only: the low-res conditioning branch and its SFT fusion into the decoder.

`condition_in` (official nn.Sequential of two ResnetBlock3D_plus) encodes the CLEAN low-res
video at latent resolution; `condition_fuse` (official `Fuse_sft_block`) turns
concat(cond, features) into a per-pixel scale and shift and adds w_lr * (features*scale + shift).
"""

from __future__ import annotations

import torch
from torch import nn

from .config import CONDITION_GROUPS
from .resnet import ResnetBlock3D, ResnetBlock3D_plus


class ConditionEncoder(nn.ModuleList):
    """Official `condition_in`: entries 0 and 1 (checkpoint keys `condition_in.{0,1}.*`)."""

    def __init__(self, in_channels: int, channels: int):
        # the first GroupNorm has one group per RGB channel (official `groups=3`); the rest 32
        super().__init__([
            ResnetBlock3D_plus(in_channels, channels, groups=in_channels, groups_out=CONDITION_GROUPS),
            ResnetBlock3D_plus(channels, channels, groups=CONDITION_GROUPS),
        ])

    def forward(self, low_res: torch.Tensor, frames) -> torch.Tensor:
        # low_res: [B*T, 3, h, w] -> [B*T, Cc, h, w]
        x = low_res
        for block in self:
            x = block(x, frames)
        return x


class SFTFusion(nn.Module):
    """Official `Fuse_sft_block` (plain ResnetBlock3D in `shared`, 32 groups)."""

    def __init__(self, cond_channels: int, channels: int):
        super().__init__()
        self.shared = nn.ModuleList([
            ResnetBlock3D(cond_channels + channels, channels, groups=CONDITION_GROUPS),
            ResnetBlock3D(channels, channels, groups=CONDITION_GROUPS),
        ])
        self.scale = nn.Conv2d(channels, channels, 3, padding=1)
        self.shift = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, cond: torch.Tensor, x: torch.Tensor, w_lr, frames) -> torch.Tensor:
        # cond: [B*T, Cc, h, w], x: [B*T, C, h, w]; w_lr: float or 0-d tensor
        h = torch.cat([cond, x], dim=1)  # official order: condition first
        for block in self.shared:
            h = block(h, frames)
        return x + w_lr * (x * self.scale(h) + self.shift(h))
