"""U-Net stages: down blocks, the mid block, up blocks and the temporal module after each.

One class per stage kind; `CrossAttn*` variants are the same class with transformers (an empty
`attentions` list registers no weights, so the state dict matches the plain variants).
"""

from __future__ import annotations

import torch
from torch import nn

from .embeddings import RotaryEmbedding, TemporalPositions
from .resnet import Downsample, FrameConv2d, ResnetBlock, TemporalResnetBlock, Upsample
from .transformer import SpatialTransformer


class DownBlock(nn.Module):
    """`DownBlock3D` / `CrossAttnDownBlock3D`: (ResNet [-> transformer]) x n [-> downsample]."""

    def __init__(self, in_channels: int, out_channels: int, temb_channels: int, num_layers: int, *,
                 eps: float, groups: int, add_downsample: bool, heads: int | None = None,
                 context_dim: int | None = None, only_cross_attention: bool = False,
                 rotary: RotaryEmbedding | None = None, downsample_padding: int = 1):
        super().__init__()
        self.resnets = nn.ModuleList([
            ResnetBlock(in_channels if i == 0 else out_channels, out_channels, temb_channels, eps=eps, groups=groups)
            for i in range(num_layers)])
        self.attentions = nn.ModuleList([
            SpatialTransformer(out_channels, heads, context_dim, groups, only_cross_attention, rotary)
            for _ in range(num_layers)] if heads is not None else [])
        self.downsamplers = nn.ModuleList([Downsample(out_channels, downsample_padding)] if add_downsample else [])

    def forward(self, x, temb, text, pos: TemporalPositions):
        """-> (x, skips): one skip per layer, plus the downsampled output."""
        skips = []
        for i, resnet in enumerate(self.resnets):
            x = resnet(x, temb)
            if len(self.attentions):
                x = self.attentions[i](x, text, pos)
            skips.append(x)
        for down in self.downsamplers:
            x = down(x)
            skips.append(x)
        return x, skips


class MidBlock(nn.Module):
    """`UNetMidBlock3DCrossAttn`: ResNet -> transformer (self-attention) -> ResNet."""

    def __init__(self, channels: int, temb_channels: int, *, eps: float, groups: int, heads: int,
                 context_dim: int, rotary: RotaryEmbedding, output_scale_factor: float = 1.0):
        super().__init__()
        kw = {"eps": eps, "groups": groups, "output_scale_factor": output_scale_factor}
        self.resnets = nn.ModuleList([ResnetBlock(channels, channels, temb_channels, **kw),
                                      ResnetBlock(channels, channels, temb_channels, **kw)])
        # the reference does not pass only_cross_attention here: the mid block self-attends
        self.attentions = nn.ModuleList([SpatialTransformer(channels, heads, context_dim, groups, False, rotary)])

    def forward(self, x, temb, text, pos: TemporalPositions):
        x = self.resnets[0](x, temb)
        x = self.attentions[0](x, text, pos)
        return self.resnets[1](x, temb)


class UpBlock(nn.Module):
    """`UpBlock3D` / `CrossAttnUpBlock3D`: (concat skip -> ResNet [-> transformer]) x n [-> upsample]."""

    def __init__(self, in_channels: int, prev_channels: int, out_channels: int, temb_channels: int,
                 num_layers: int, *, eps: float, groups: int, add_upsample: bool, heads: int | None = None,
                 context_dim: int | None = None, only_cross_attention: bool = False,
                 rotary: RotaryEmbedding | None = None):
        super().__init__()
        resnets = []
        for i in range(num_layers):
            skip_channels = in_channels if i == num_layers - 1 else out_channels
            res_in = prev_channels if i == 0 else out_channels
            resnets.append(ResnetBlock(res_in + skip_channels, out_channels, temb_channels, eps=eps, groups=groups))
        self.resnets = nn.ModuleList(resnets)
        self.attentions = nn.ModuleList([
            SpatialTransformer(out_channels, heads, context_dim, groups, only_cross_attention, rotary)
            for _ in range(num_layers)] if heads is not None else [])
        self.upsamplers = nn.ModuleList([Upsample(out_channels)] if add_upsample else [])

    def forward(self, x, skips: list, temb, text, pos: TemporalPositions, upsample_size=None):
        """skips: this block's skip tensors, consumed last-first. upsample_size: (T, H, W)."""
        for i, resnet in enumerate(self.resnets):
            x = resnet(torch.cat([x, skips[-1 - i]], dim=1), temb)
            if len(self.attentions):
                x = self.attentions[i](x, text, pos)
        for up in self.upsamplers:
            x = up(x, upsample_size)
        return x


class TemporalModule(nn.Module):
    """`TemporalModule3D` with no attention (the release's ["", ""]): x + shift_conv(spatial(temporal(x))).

    Both ResNets take the time embedding and use 32 groups / eps 1e-6; the temporal one has a
    (5,1,1) first convolution.
    """

    def __init__(self, channels: int, temb_channels: int):
        super().__init__()
        self.resblocks_3d_temporal = TemporalResnetBlock(channels, kernel_t=5, temb_channels=temb_channels)
        self.resblocks_3d_spatial = ResnetBlock(channels, channels, temb_channels, eps=1e-6, groups=32)
        self.shift_conv = FrameConv2d(channels, channels, 1)

    def forward(self, x, temb):
        h = self.resblocks_3d_temporal(x, temb)
        h = self.resblocks_3d_spatial(h, temb)
        return x + self.shift_conv(h)


class NoTemporalModule(nn.Module):
    """Placeholder for a block without a temporal module (keeps the list indices of the checkpoint)."""

    def forward(self, x, temb):
        return x
