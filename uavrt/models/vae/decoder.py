"""The decoder trunk (official `vae_video.Decoder`): conv_in -> [condition fusion] -> mid block
-> up blocks -> GroupNorm/SiLU/conv_out. Everything runs on the frames layout [B*T, C, H, W].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .attention import AttentionBlock
from .condition import ConditionEncoder, SFTFusion
from .config import VAEConfig
from .ops import video_group_norm
from .resnet import ResnetBlock3D, ResnetBlock3D_plus

EPS = 1e-6  # every decoder norm (official resnet_eps and the conv_norm_out)
LOW_RES_CHANNELS = 3


def _resnet_class(plus: bool):
    return ResnetBlock3D_plus if plus else ResnetBlock3D


class MidBlock(nn.Module):
    """Official UNetMidBlock3D(_plus): ResNet -> per-frame attention -> ResNet."""

    def __init__(self, channels: int, groups: int, plus: bool):
        super().__init__()
        resnet = _resnet_class(plus)
        self.resnets = nn.ModuleList([resnet(channels, groups=groups, eps=EPS) for _ in range(2)])
        self.attentions = nn.ModuleList([AttentionBlock(channels, groups=groups, eps=EPS)])

    def forward(self, x: torch.Tensor, frames) -> torch.Tensor:
        x = self.resnets[0](x, frames)
        x = self.attentions[0](x)
        return self.resnets[1](x, frames)


class Upsample(nn.Module):
    """Nearest x2 in H and W (never in time), then a 3x3 conv (official Upsample3D, use_conv)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: [B*T, C, H, W] -> [B*T, C, 2H, 2W]
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class UpDecoderBlock(nn.Module):
    """Official UpDecoderBlock3D(_plus): `num_layers` ResNets, then optionally Upsample."""

    def __init__(self, in_channels: int, out_channels: int, num_layers: int, groups: int,
                 plus: bool, add_upsample: bool):
        super().__init__()
        resnet = _resnet_class(plus)
        self.resnets = nn.ModuleList([
            resnet(in_channels if i == 0 else out_channels, out_channels, groups=groups, eps=EPS)
            for i in range(num_layers)
        ])
        self.upsamplers = nn.ModuleList([Upsample(out_channels)]) if add_upsample else None

    def forward(self, x: torch.Tensor, frames) -> torch.Tensor:
        for resnet in self.resnets:
            x = resnet(x, frames)
        if self.upsamplers is not None:
            x = self.upsamplers[0](x)
        return x


class Decoder(nn.Module):
    def __init__(self, cfg: VAEConfig):
        super().__init__()
        widths = list(reversed(cfg.block_out_channels))  # deepest first
        groups = cfg.norm_num_groups
        self.conv_in = nn.Conv2d(cfg.latent_channels, widths[0], 3, padding=1)
        if cfg.condition_img:
            self.condition_in = ConditionEncoder(LOW_RES_CHANNELS, cfg.condition_channels)
            self.condition_fuse = SFTFusion(cfg.condition_channels, widths[0])
        self.condition_img = cfg.condition_img
        # `use_temporal_block` only creates empty containers in the official code: nothing to build.
        self.mid_block = MidBlock(widths[0], groups, plus=cfg.mid_block_plus)
        self.up_blocks = nn.ModuleList()
        prev = widths[0]
        for i, block_type in enumerate(cfg.up_block_types):
            self.up_blocks.append(UpDecoderBlock(
                prev, widths[i], cfg.layers_per_block + 1, groups,
                plus=block_type.endswith("_plus"), add_upsample=i < len(widths) - 1))
            prev = widths[i]
        self.conv_norm_out = nn.GroupNorm(groups, cfg.block_out_channels[0], eps=EPS)
        self.conv_out = nn.Conv2d(cfg.block_out_channels[0], cfg.out_channels, 3, padding=1)

    def forward(self, z: torch.Tensor, frames, low_res: torch.Tensor | None = None, w_lr=1.0) -> torch.Tensor:
        # z: [B*T, 4, h, w] (after post_quant_conv); low_res: [B*T, 3, h, w] -> [B*T, 3, 4h, 4w]
        x = self.conv_in(z)
        if self.condition_img:
            cond = self.condition_in(low_res, frames)
            x = self.condition_fuse(cond, x, w_lr, frames)
        x = self.mid_block(x, frames)
        for block in self.up_blocks:
            x = block(x, frames)
        x = F.silu(video_group_norm(x, frames, self.conv_norm_out))
        return self.conv_out(x)
