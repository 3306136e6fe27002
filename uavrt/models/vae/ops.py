"""Layout helpers shared by the decoder modules.

The decoder keeps activations in the *frames* layout [B*T, C, H, W] (b-major, like the official
`(b t)` rearrange): every 2-D convolution then runs without a transpose. Only two things need
the video: GroupNorm, whose statistics span all frames of the chunk (official GroupNorms receive
the 5-D tensor), and the 3x3x3 Conv3d of the `_plus` ResNets.

Memory format: activations are channels-last, i.e. stored as [B, T, H, W, C]. Then the frames
view [B*T, C, H, W] (channels_last) and the video view [B, C, T, H, W] (channels_last_3d) are
the SAME memory: switching between them is free (the official code copies at every
InflatedConv3d rearrange), the GroupNorm over the video is torch's native kernel, and oneDNN's
NHWC convolutions are faster on CPU (profile: benchmarks/results/throughput_*.md).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def to_frames(video: torch.Tensor) -> torch.Tensor:
    # video: [B, C, T, H, W] -> [B*T, C, H, W]
    b, c, t, h, w = video.shape
    return video.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w)


def to_video(x: torch.Tensor, frames) -> torch.Tensor:
    # x: [B*T, C, H, W] -> [B, C, T, H, W] (a view; callers make it contiguous if they need to)
    _, c, h, w = x.shape
    return x.reshape(-1, frames, c, h, w).permute(0, 2, 1, 3, 4)


def channels_last(x: torch.Tensor) -> torch.Tensor:
    """A frames [N, C, H, W] or video [B, C, T, H, W] tensor in the decoder's memory format."""
    fmt = torch.channels_last if x.dim() == 4 else torch.channels_last_3d
    return x.contiguous(memory_format=fmt)


def channels_last_weights_(module: nn.Module) -> nn.Module:
    """Store every conv weight channels-last (in place), so oneDNN does not reorder it per call.

    load_state_dict copies into these tensors and keeps their strides; a module whose weights
    end up contiguous anyway still computes the same values (only slower)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Conv3d)):
            m.weight.data = channels_last(m.weight.data)
    return module


def video_group_norm(x: torch.Tensor, frames, norm: nn.GroupNorm) -> torch.Tensor:
    """nn.GroupNorm applied to the video [B, C, T, H, W], computed on the frames layout.

    x: [B*T, C, H, W]. Statistics per (batch row, group) over all T frames, H and W, exactly what
    the official 5-D GroupNorm does: it IS torch's GroupNorm, on the video view of x (a view, no
    copy, when x is channels-last). Computed in the norm's dtype (float32: an fp16 graph keeps
    the statistics in fp32, see export/fp16.py; the casts are no-ops in the fp32 release VAE).
    """
    y = F.group_norm(to_video(x, frames).to(norm.weight.dtype), norm.num_groups, norm.weight,
                     norm.bias, norm.eps)
    return to_frames(y.to(x.dtype))
