"""The spatial transformer of the video U-Net (reference `Transformer3DModel`)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .attention import Attention, TemporalAttention
from .embeddings import RotaryEmbedding, TemporalPositions
from .resnet import TemporalResnetBlock


class GEGLU(nn.Module):
    """proj -> (value, gate) halves -> value * gelu(gate) (exact GELU; value is the FIRST half)."""

    def __init__(self, dim_in: int, dim_out: int):
        super().__init__()
        self.proj = nn.Linear(dim_in, 2 * dim_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        value, gate = self.proj(x).chunk(2, dim=-1)
        return value * F.gelu(gate)


class FeedForward(nn.Module):
    def __init__(self, dim: int, mult: int = 4):
        super().__init__()
        # [GEGLU, Dropout, Linear] in the checkpoint: index 1 (dropout) has no weights
        self.net = nn.ModuleList([GEGLU(dim, mult * dim), nn.Identity(), nn.Linear(mult * dim, dim)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net[2](self.net[0](x))


class TransformerBlock(nn.Module):
    """attn1 (self, or text cross-attention when only_cross_attention) -> attn2 (text) ->
    temporal attention -> GEGLU feed-forward; each pre-LayerNorm (eps 1e-5) with a residual."""

    def __init__(self, dim: int, heads: int, context_dim: int, only_cross_attention: bool,
                 rotary: RotaryEmbedding):
        super().__init__()
        self.only_cross_attention = only_cross_attention
        self.attn1 = Attention(dim, heads, context_dim if only_cross_attention else None)
        self.norm1 = nn.LayerNorm(dim)
        self.attn2 = Attention(dim, heads, context_dim)
        self.norm2 = nn.LayerNorm(dim)
        self.attn_temporal = TemporalAttention(dim, heads, rotary)
        self.norm_temporal = nn.LayerNorm(dim)
        self.ff = FeedForward(dim)
        self.norm3 = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor, text: torch.Tensor, pos: TemporalPositions, b: int, t: int) -> torch.Tensor:
        # x: [B*T, S, C] tokens of each frame; text: [B, L, Cx]
        x = self.attn1(self.norm1(x), text if self.only_cross_attention else None, b, t) + x
        x = self.attn2(self.norm2(x), text, b, t) + x
        _, s, c = x.shape
        x_t = self.norm_temporal(x).reshape(b, t, s, c)  # LayerNorm is per token: any layout
        x = self.attn_temporal(x_t, pos).reshape(b * t, s, c) + x
        return self.ff(self.norm3(x)) + x


class SpatialTransformer(nn.Module):
    """Temporal ResNet, then per-frame GroupNorm -> proj_in -> block -> proj_out -> + residual.

    The residual is the temporal ResNet's OUTPUT (not the block input). Unlike the U-Net's other
    GroupNorms, `norm` sees frames folded into the batch, so its statistics are per frame.
    """

    def __init__(self, channels: int, heads: int, context_dim: int, groups: int, only_cross_attention: bool,
                 rotary: RotaryEmbedding):
        super().__init__()
        self.resblock_temporal = TemporalResnetBlock(channels, kernel_t=3, temb_channels=None)
        self.norm = nn.GroupNorm(groups, channels, eps=1e-6)
        self.proj_in = nn.Linear(channels, channels)
        self.transformer_blocks = nn.ModuleList(
            [TransformerBlock(channels, heads, context_dim, only_cross_attention, rotary)])
        # the reference declares proj_out as Linear(in_channels, inner_dim): the same shape only
        # because inner_dim == in_channels here
        self.proj_out = nn.Linear(channels, channels)

    def forward(self, x: torch.Tensor, text: torch.Tensor, pos: TemporalPositions) -> torch.Tensor:
        # x: [B, C, T, H, W]
        b, c, t, h, w = x.shape
        residual = self.resblock_temporal(x)
        frames = residual.transpose(1, 2).reshape(b * t, c, h, w)
        tokens = self.norm(frames).permute(0, 2, 3, 1).reshape(b * t, h * w, c)
        tokens = self.proj_in(tokens)
        for block in self.transformer_blocks:
            tokens = block(tokens, text, pos, b, t)
        tokens = self.proj_out(tokens)  # [B*T, H*W, C]
        return tokens.reshape(b, t, h, w, c).permute(0, 4, 1, 2, 3) + residual
