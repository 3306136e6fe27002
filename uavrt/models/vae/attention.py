"""Mid-block spatial self-attention: diffusers' (0.16) `AttentionBlock`, single head.

Checkpoint names are the old diffusers ones: group_norm, query, key, value, proj_attn.
The official mid block rearranges to `(b t) c h w` BEFORE calling it, so unlike every other
GroupNorm of the decoder this one normalises each frame on its own.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class AttentionBlock(nn.Module):
    def __init__(self, channels: int, *, groups: int = 32, eps: float = 1e-6):
        super().__init__()
        self.group_norm = nn.GroupNorm(groups, channels, eps=eps)
        self.query = nn.Linear(channels, channels)
        self.key = nn.Linear(channels, channels)
        self.value = nn.Linear(channels, channels)
        self.proj_attn = nn.Linear(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: [N, C, H, W], N = B*T frames; attention over the H*W pixels of each frame
        n, c, h, w = x.shape
        tokens = self.group_norm(x).reshape(n, c, h * w).transpose(1, 2)  # [N, HW, C]
        q = self.query(tokens)[:, None]  # [N, 1, HW, C]: one head of width C
        k = self.key(tokens)[:, None]
        v = self.value(tokens)[:, None]
        # SDPA's default scale 1/sqrt(C) is the official 1/sqrt(channels / num_heads) with 1 head;
        # a fused kernel avoids materialising the HW x HW matrix (HW is large at the mid level).
        out = F.scaled_dot_product_attention(q, k, v)[:, 0]  # [N, HW, C]
        out = self.proj_attn(out).transpose(1, 2).reshape(n, c, h, w)
        return x + out  # official rescale_output_factor is 1.0
