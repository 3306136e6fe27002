"""RAFT's all-pairs correlation pyramid and its windowed lookup.

The volume is built once per image pair: every 1/8-resolution pixel of image 1 against every
pixel of image 2, then average-pooled 3 times (4 levels). Each refinement iteration samples a
(2r+1)^2 window around the current match at every level. Everything here is float32: the
official code casts the feature maps to float32 before building the volume.

Export notes: only 4-D `grid_sample` (TensorRT supports no other), no data-dependent shapes;
the (N*h*w) batch of the pyramid levels is a shape product, not a value.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def build_corr_pyramid(fmap1: torch.Tensor, fmap2: torch.Tensor, num_levels: int = 4) -> list:
    """fmap1, fmap2: [N, C, h, w] -> levels [N*h*w, 1, h/2^i, w/2^i] (float32)."""
    n, c, h, w = fmap1.shape
    f1 = fmap1.float().reshape(n, c, h * w)
    f2 = fmap2.float().reshape(n, c, h * w)
    corr = torch.matmul(f1.transpose(1, 2), f2)  # [N, h*w, h*w]
    # official: divide by sqrt(C) computed as a float32 tensor (16 exactly for C=256)
    corr = corr / torch.sqrt(torch.tensor(float(c), dtype=torch.float32))
    corr = corr.reshape(n * h * w, 1, h, w)
    pyramid = [corr]
    for _ in range(num_levels - 1):
        corr = F.avg_pool2d(corr, 2, stride=2)
        pyramid.append(corr)
    return pyramid


def window_offsets(radius: int, device=None) -> torch.Tensor:
    """The lookup window as [1, 2r+1, 2r+1, 2] offsets, in the official (transposed) order.

    The official code stacks meshgrid(dy, dx) (ij indexing) and adds it to (x, y) centroids, so
    the FIRST window axis moves x and the second moves y. The motion encoder's first conv was
    trained on that channel order, so it is kept as is.
    """
    d = torch.arange(-radius, radius + 1, dtype=torch.float32, device=device)
    k = d.shape[0]
    first = d.reshape(k, 1).expand(k, k)   # varies along window axis 0 -> added to x
    second = d.reshape(1, k).expand(k, k)  # varies along window axis 1 -> added to y
    return torch.stack([first, second], dim=-1).reshape(1, k, k, 2)


def bilinear_sampler(img: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
    """Sample img [B, C, H, W] at pixel coords [B, h, w, 2] (x, y); zeros outside.

    Same semantics as RAFT's `bilinear_sampler`: pixel -> [-1, 1] with align_corners=True.
    NOTE: a level of width or height 1 divides by zero (NaN), as in the official code; callers
    reject frames below 128 px, where the coarsest level would be 1 pixel.
    """
    h, w = img.shape[-2:]
    xgrid, ygrid = coords.split([1, 1], dim=-1)
    xgrid = 2 * xgrid / (w - 1) - 1
    ygrid = 2 * ygrid / (h - 1) - 1
    grid = torch.cat([xgrid, ygrid], dim=-1)
    return F.grid_sample(img, grid, mode="bilinear", padding_mode="zeros", align_corners=True)


def lookup(pyramid: list, coords: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """coords: [N, 2, h, w] (x, y) at 1/8 -> correlation features [N, levels*(2r+1)^2, h, w]."""
    n, _, h, w = coords.shape
    centroid = coords.permute(0, 2, 3, 1).reshape(n * h * w, 1, 1, 2)
    out = []
    for i, corr in enumerate(pyramid):
        # centroid at level i: [N*h*w, 1, 1, 2] + window [1, k, k, 2] -> [N*h*w, k, k, 2]
        sampled = bilinear_sampler(corr, centroid / 2 ** i + offsets)  # [N*h*w, 1, k, k]
        out.append(sampled.reshape(n, h, w, -1))
    return torch.cat(out, dim=-1).permute(0, 3, 1, 2).contiguous()
