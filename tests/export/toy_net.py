"""A small network with the op kinds of the real ones (per-frame conv on 5-D video, GroupNorm
over 5-D, LayerNorm, multi-head SDPA attention, softmax, nearest upsampling, grid_sample, a
float32 sinusoidal embedding of an int64 timestep), and its spec. Shared by the export and
ONNX Runtime backend tests: the machinery is tested on it in seconds."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from uavrt.spec import DimRange, NetworkSpec, f32, i64

TOY = NetworkSpec(
    "toy",
    inputs=(f32("sample", "B", 4, "T", "H", "W"), i64("timestep"), f32("scale", keep_fp32=True)),
    outputs=(f32("out", "B", 4, "T", "2*H", "2*W"),),
    ranges={"B": DimRange(1, 2, 4), "T": DimRange(1, 3, 8), "H": DimRange(4, 8, 64), "W": DimRange(4, 8, 64)},
    example={"B": 2, "T": 3, "H": 8, "W": 12},
)


class ToyNet(nn.Module):
    def __init__(self, c: int = 32, heads: int = 2):
        super().__init__()
        self.heads = heads
        self.config = {"channels": c, "heads": heads}
        self.conv_in = nn.Conv2d(4, c, 3, padding=1)
        self.norm = nn.GroupNorm(8, c, eps=1e-6)
        self.temb = nn.Linear(c, c)
        self.tconv = nn.Conv3d(c, c, (3, 1, 1), padding=(1, 0, 0))
        self.ln = nn.LayerNorm(c)
        self.qkv = nn.Linear(c, 3 * c, bias=False)
        self.proj = nn.Linear(c, c)
        self.conv_out = nn.Conv2d(c, 4, 3, padding=1)

    def forward(self, sample, timestep, scale):
        # sample: [B, 4, T, H, W]
        b, _, t, h, w = sample.shape
        dtype = self.conv_in.weight.dtype
        c = self.conv_in.out_channels
        freqs = torch.exp(-math.log(1e4) * torch.arange(c // 2, dtype=torch.float32) / (c // 2))
        e = timestep.float().reshape(1) * freqs
        emb = self.temb(torch.cat([e.cos(), e.sin()]).to(dtype))  # [C]
        x = sample.permute(0, 2, 1, 3, 4).reshape(b * t, 4, h, w)
        x = self.conv_in(x).reshape(b, t, c, h, w).permute(0, 2, 1, 3, 4)  # [B, C, T, H, W]
        x = F.silu(self.norm(x)) + emb.reshape(1, c, 1, 1, 1)
        x = x + self.tconv(x)
        tokens = x.permute(0, 2, 3, 4, 1).reshape(b * t, h * w, c)
        q, k, v = self.qkv(self.ln(tokens)).chunk(3, dim=-1)
        q, k, v = (z.reshape(b * t, h * w, self.heads, -1).transpose(1, 2) for z in (q, k, v))
        a = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b * t, h * w, c)
        tokens = tokens + self.proj(a)
        x = tokens.reshape(b * t, h, w, c).permute(0, 3, 1, 2)
        x = F.interpolate(x, scale_factor=2.0, mode="nearest")  # [BT, C, 2H, 2W]
        ys = torch.arange(2 * h, dtype=torch.float32) / (2 * h - 1) * 2 - 1
        xs = torch.arange(2 * w, dtype=torch.float32) / (2 * w - 1) * 2 - 1
        grid = torch.stack([xs.reshape(1, -1).expand(2 * h, -1), ys.reshape(-1, 1).expand(-1, 2 * w)], dim=-1)
        grid = (grid * 0.9 * scale.float()).to(x.dtype).expand(b * t, -1, -1, -1)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
        x = self.conv_out(x)
        return x.reshape(b, t, 4, 2 * h, 2 * w).permute(0, 2, 1, 3, 4)


def toy_net(seed: int = 0) -> ToyNet:
    torch.manual_seed(seed)
    return ToyNet().eval()
