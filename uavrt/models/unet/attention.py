"""Attention layers: spatial self-attention, text cross-attention, temporal attention.

Channel layout of q/k/v is head-major (head h owns features [h*d, (h+1)*d)), q/k/v have no bias
and `to_out.0` has one, as in the checkpoint (`to_out` was [Linear, Dropout]; index 0 kept).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .embeddings import RotaryEmbedding, TemporalPositions, apply_rotary


def _split_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    # x: [N, S, heads*d] -> [N, heads, S, d]
    return x.unflatten(-1, (heads, -1)).transpose(1, 2)


def _merge_heads(x: torch.Tensor) -> torch.Tensor:
    # x: [N, heads, S, d] -> [N, S, heads*d]
    return x.transpose(1, 2).flatten(2)


class Attention(nn.Module):
    """Multi-head attention over tokens of one frame, or from every frame to the text.

    `context_dim` set: keys/values come from the text embeddings (cross-attention).
    """

    def __init__(self, dim: int, heads: int, context_dim: int | None = None):
        super().__init__()
        self.heads = heads
        kv_dim = dim if context_dim is None else context_dim
        self.to_q = nn.Linear(dim, dim, bias=False)
        self.to_k = nn.Linear(kv_dim, dim, bias=False)
        self.to_v = nn.Linear(kv_dim, dim, bias=False)
        self.to_out = nn.ModuleList([nn.Linear(dim, dim)])

    def forward(self, x: torch.Tensor, context: torch.Tensor | None, b: int, t: int) -> torch.Tensor:
        """x: [B*T, S, C] tokens of each frame; context: [B, L, Cx] text (None: self-attention).

        B and T are passed in rather than derived by division: `-1`/`//` on symbolic sizes make
        the shape expressions explode when exporting with dynamic batch/frames.
        """
        if context is None:
            q, k, v = self.to_q(x), self.to_k(x), self.to_v(x)
            out = F.scaled_dot_product_attention(_split_heads(q, self.heads), _split_heads(k, self.heads),
                                                 _split_heads(v, self.heads))
            return self.to_out[0](_merge_heads(out))
        # Cross-attention. The reference repeats the text once per frame; the keys are then equal
        # for every frame of a sample, so attending from all B*T*S tokens of a sample to one copy
        # is the same computation without T copies of the text projections.
        n, s, c = x.shape
        q = self.to_q(x).reshape(b, t * s, c)  # [B, T*S, C]
        k, v = self.to_k(context), self.to_v(context)  # [B, L, C]
        out = F.scaled_dot_product_attention(_split_heads(q, self.heads), _split_heads(k, self.heads),
                                             _split_heads(v, self.heads))
        return self.to_out[0](_merge_heads(out).reshape(n, s, c))


class RelativePositionBias(nn.Module):
    """Learned per-head bias for each relative-position bucket (`relative_attention_bias`)."""

    def __init__(self, heads: int, num_buckets: int = 32):
        super().__init__()
        self.relative_attention_bias = nn.Embedding(num_buckets, heads)

    def forward(self, buckets: torch.Tensor) -> torch.Tensor:
        # buckets: [T, T] -> bias [heads, T, T]
        return self.relative_attention_bias(buckets).permute(2, 0, 1)


class TemporalAttention(nn.Module):
    """Self-attention across the frames at each pixel, with rotary positions + relative bias.

    Reference order: q scaled by d^-0.5, rotary on q and k (first 32 features of each head),
    scores + bias[head, i, j], softmax. The reference also subtracts the row max before the
    softmax; softmax already does that internally, so it is not repeated here.
    """

    def __init__(self, dim: int, heads: int, rotary: RotaryEmbedding):
        super().__init__()
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.to_q = nn.Linear(dim, dim, bias=False)
        self.to_k = nn.Linear(dim, dim, bias=False)
        self.to_v = nn.Linear(dim, dim, bias=False)
        self.to_out = nn.ModuleList([nn.Linear(dim, dim)])
        self.time_rel_pos_bias = RelativePositionBias(heads)
        # the shared module, registered here too so the checkpoint's per-attention name exists
        self.rotary_emb = rotary

    def forward(self, x: torch.Tensor, pos: TemporalPositions) -> torch.Tensor:
        """x: [B, T, S, C] (frames of each pixel) -> [B, T, S, C]."""
        b, t, s, c = x.shape

        def heads_over_time(y):  # [B, T, S, C] -> [B, S, heads, T, d]
            return y.unflatten(-1, (self.heads, -1)).permute(0, 2, 3, 1, 4)

        q = apply_rotary(heads_over_time(self.to_q(x)) * self.scale, pos.cos, pos.sin)
        k = apply_rotary(heads_over_time(self.to_k(x)), pos.cos, pos.sin)
        v = heads_over_time(self.to_v(x))
        scores = q @ k.transpose(-1, -2) + self.time_rel_pos_bias(pos.buckets).to(q.dtype)  # [B, S, h, T, T]
        out = scores.softmax(dim=-1) @ v  # [B, S, heads, T, d]
        out = out.permute(0, 3, 1, 2, 4).reshape(b, t, s, c)
        return self.to_out[0](out)
