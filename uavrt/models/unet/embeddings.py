"""Timestep embedding and the temporal position encodings (rotary + relative position buckets).

Everything position-like is computed in float32 from shapes (never from tensor values) and cast
to the activations' dtype only at the end: sin/cos of t*freq loses too much in fp16.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn


def sinusoidal_embedding(timesteps: torch.Tensor, dim: int, flip_sin_to_cos: bool = True,
                         freq_shift: float = 0.0) -> torch.Tensor:
    """timesteps: [B] -> [B, dim] float32 (diffusers `Timesteps`: cos first when flipped)."""
    half = dim // 2
    exponent = -math.log(10000.0) * torch.arange(half, dtype=torch.float32, device=timesteps.device)
    freqs = torch.exp(exponent / (half - freq_shift))
    args = timesteps.to(torch.float32)[:, None] * freqs[None, :]
    sin, cos = torch.sin(args), torch.cos(args)
    emb = torch.cat([cos, sin] if flip_sin_to_cos else [sin, cos], dim=-1)
    if dim % 2:
        emb = F.pad(emb, (0, 1))
    return emb


class TimestepEmbedding(nn.Module):
    """Linear -> SiLU -> Linear (names `linear_1`, `linear_2` as in the checkpoint)."""

    def __init__(self, in_dim: int, out_dim: int):
        super().__init__()
        self.linear_1 = nn.Linear(in_dim, out_dim)
        self.linear_2 = nn.Linear(out_dim, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear_2(F.silu(self.linear_1(x)))


class RotaryEmbedding(nn.Module):
    """Holds the rotary frequencies as the parameter `freqs` (rotary-embedding-torch layout).

    The reference registers ONE instance at the top level and inside every temporal attention;
    we do the same (same object), so the state dict lists `freqs` under every name while loading
    keeps a single shared tensor. The angles themselves are computed once per forward by
    `temporal_positions`, not per attention.
    """

    def __init__(self, dim: int = 32, theta: float = 10000.0):
        super().__init__()
        freqs = 1.0 / (theta ** (torch.arange(0, dim, 2)[: dim // 2].float() / dim))
        # a Parameter (not a buffer) because the checkpoint stores it; never trained
        self.freqs = nn.Parameter(freqs, requires_grad=False)

    @property
    def rot_dim(self) -> int:
        return 2 * self.freqs.shape[0]


class TemporalPositions(NamedTuple):
    """Per-forward temporal encodings shared by every temporal attention of the U-Net."""

    cos: torch.Tensor  # [T, rot_dim/2], activation dtype
    sin: torch.Tensor  # [T, rot_dim/2]
    buckets: torch.Tensor  # [T, T] int64 relative-position bucket of (query i, key j)


def relative_position_buckets(n: int, device, num_buckets: int = 32, max_distance: int = 32) -> torch.Tensor:
    """T5-style buckets of (key - query) for an n-frame clip: [n, n] int64.

    Keys not after the query use buckets 0..15 (distance i-j), keys after it 16..31; distances
    below 8 are exact, longer ones are log-spaced up to max_distance.
    """
    pos = torch.arange(n, device=device)
    rel = pos[None, :] - pos[:, None]  # [i, j] = j - i
    half = num_buckets // 2
    ret = (rel > 0).long() * half
    dist = rel.abs()
    max_exact = half // 2
    # clamp before the log so dist=0 never reaches log(0) (the value is discarded by the where,
    # but casting -inf to int64 is undefined on some backends)
    far = max_exact + (torch.log(dist.clamp(min=max_exact).float() / max_exact)
                       / math.log(max_distance / max_exact) * (half - max_exact)).long()
    far = far.clamp(max=half - 1)
    return ret + torch.where(dist < max_exact, dist, far)


def temporal_positions(rotary: RotaryEmbedding, n_frames: int, dtype: torch.dtype) -> TemporalPositions:
    freqs = rotary.freqs.to(torch.float32)
    pos = torch.arange(n_frames, device=freqs.device, dtype=torch.float32)
    angles = pos[:, None] * freqs[None, :]  # [T, rot_dim/2]
    return TemporalPositions(angles.cos().to(dtype), angles.sin().to(dtype),
                             relative_position_buckets(n_frames, freqs.device))


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate interleaved pairs (0,1),(2,3),... of the first 2*len(freqs) features of x.

    x: [..., T, d]; cos/sin: [T, r/2]. Features beyond r are left as they are.
    """
    r = 2 * cos.shape[-1]
    rot, rest = x[..., :r], x[..., r:]
    pairs = rot.unflatten(-1, (r // 2, 2))
    x1, x2 = pairs[..., 0], pairs[..., 1]
    out = torch.stack((x1 * cos - x2 * sin, x2 * cos + x1 * sin), dim=-1).flatten(-2)
    if x.shape[-1] == r:
        return out
    return torch.cat((out, rest), dim=-1)
