"""ResNet blocks, down/up samplers of the video U-Net. Activations are [B, C, T, H, W].

Two facts of the reference shape everything here:
- 2-D convolutions run per frame, but GroupNorm is applied to the 5-D tensor, so its statistics
  span all frames of the clip (outputs depend on the clip length);
- the temporal ResNets use Conv3d with (k,1,1) kernels and 32 groups / eps 1e-6, whatever the
  main config says.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class FrameConv2d(nn.Conv2d):
    """A 2-D convolution applied to every frame of a [B, C, T, H, W] video.

    The weight keeps the checkpoint's 2-D shape [O, I, k, k]; running it as a Conv3d with a
    (1, k, k) kernel is the same arithmetic without moving frames into the batch (no transposes
    around every convolution, one Conv node in the exported graph).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: [B, C, T, H, W] -> [B, O, T, H', W']
        return F.conv3d(x, self.weight.unsqueeze(2), self.bias, stride=(1, *self.stride),
                        padding=(0, *self.padding))


class ResnetBlock(nn.Module):
    """Reference `ResnetBlock3D`: per-frame 3x3 convs, frame-spanning GroupNorms, time embedding.

    `temb_channels=None` builds it without `time_emb_proj`.
    """

    def __init__(self, in_channels: int, out_channels: int, temb_channels: int | None, *, eps: float,
                 groups: int, output_scale_factor: float = 1.0):
        super().__init__()
        self.output_scale_factor = output_scale_factor
        self.norm1 = nn.GroupNorm(groups, in_channels, eps=eps)
        self.conv1 = FrameConv2d(in_channels, out_channels, 3, padding=1)
        self.time_emb_proj = nn.Linear(temb_channels, out_channels) if temb_channels is not None else None
        self.norm2 = nn.GroupNorm(groups, out_channels, eps=eps)
        self.conv2 = FrameConv2d(out_channels, out_channels, 3, padding=1)
        self.conv_shortcut = FrameConv2d(in_channels, out_channels, 1) if in_channels != out_channels else None

    def forward(self, x: torch.Tensor, temb: torch.Tensor | None = None) -> torch.Tensor:
        # x: [B, C, T, H, W]; temb: [B, E]
        h = self.conv1(F.silu(self.norm1(x)))
        if self.time_emb_proj is not None:
            h = h + self.time_emb_proj(F.silu(temb))[:, :, None, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        skip = self.conv_shortcut(x) if self.conv_shortcut is not None else x
        out = skip + h
        if self.output_scale_factor != 1.0:
            out = out / self.output_scale_factor
        return out


class TemporalResnetBlock(nn.Module):
    """Reference `ResnetBlock3DCNN`: Conv3d over time only ((k,1,1) then (3,1,1)), 32 groups.

    Used first inside every spatial transformer (k=3, no time embedding) and in the temporal
    modules between U-Net blocks (k=5, with time embedding).
    """

    def __init__(self, channels: int, kernel_t: int = 3, temb_channels: int | None = None,
                 *, eps: float = 1e-6, groups: int = 32):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, channels, eps=eps)
        self.conv1 = nn.Conv3d(channels, channels, (kernel_t, 1, 1), padding=((kernel_t - 1) // 2, 0, 0))
        self.time_emb_proj = nn.Linear(temb_channels, channels) if temb_channels is not None else None
        self.norm2 = nn.GroupNorm(groups, channels, eps=eps)
        self.conv2 = nn.Conv3d(channels, channels, (3, 1, 1), padding=(1, 0, 0))

    def forward(self, x: torch.Tensor, temb: torch.Tensor | None = None) -> torch.Tensor:
        # x: [B, C, T, H, W]
        h = self.conv1(F.silu(self.norm1(x)))
        if self.time_emb_proj is not None:
            h = h + self.time_emb_proj(F.silu(temb))[:, :, None, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return x + h


class Downsample(nn.Module):
    """Stride-2 3x3 per-frame conv (padding 1): H -> ceil(H/2)."""

    def __init__(self, channels: int, padding: int = 1):
        super().__init__()
        self.conv = FrameConv2d(channels, channels, 3, stride=2, padding=padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class Upsample(nn.Module):
    """Nearest x2 in H and W (frames untouched), then a 3x3 per-frame conv.

    The output size is always taken from the skip connection it will be concatenated with. The
    reference forces that size only when H or W is not a multiple of 8 and otherwise scales by
    2; both give the same tensor when the skip is exactly twice as large, so one shape-driven
    path serves every size (no data-dependent branch in the exported graph).
    """

    def __init__(self, channels: int):
        super().__init__()
        self.conv = FrameConv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor, size) -> torch.Tensor:
        # x: [B, C, T, h, w]; size: (T, H, W) of the skip
        x = F.interpolate(x, size=tuple(size), mode="nearest")
        return self.conv(x)
