"""RAFT's BasicEncoder: the feature network (instance norm) and the context network (batch norm).

Both are a 7x7 stride-2 stem followed by three stages of two residual blocks (64, 96, 128
channels; stride 1, 2, 2) and a 1x1 projection, so the output is at 1/8 resolution.
"""

from __future__ import annotations

import torch
from torch import nn

from ...errors import check_choice

NORMS = ("batch", "instance", "group", "none")


def make_norm(norm_fn: str, channels: int, groups: int) -> nn.Module:
    """The official norm layers; `groups` only matters for 'group'."""
    check_choice("norm_fn", norm_fn, NORMS)
    if norm_fn == "batch":
        return nn.BatchNorm2d(channels)
    if norm_fn == "instance":
        # affine=False, no running stats: InstanceNorm contributes no state-dict entries
        return nn.InstanceNorm2d(channels)
    if norm_fn == "group":
        return nn.GroupNorm(num_groups=groups, num_channels=channels)
    return nn.Sequential()


class ResidualBlock(nn.Module):
    def __init__(self, in_planes: int, planes: int, norm_fn: str, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, kernel_size=3, padding=1, stride=stride)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, padding=1)
        self.norm1 = make_norm(norm_fn, planes, planes // 8)
        self.norm2 = make_norm(norm_fn, planes, planes // 8)
        self.downsample = None
        if stride != 1:
            # the official block registers this norm twice (as norm3 and as downsample.1), so
            # checkpoints carry both names for the same tensors; registering it twice keeps that.
            self.norm3 = make_norm(norm_fn, planes, planes // 8)
            self.downsample = nn.Sequential(nn.Conv2d(in_planes, planes, kernel_size=1, stride=stride), self.norm3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.norm1(self.conv1(x)))
        y = torch.relu(self.norm2(self.conv2(y)))
        if self.downsample is not None:
            x = self.downsample(x)
        return torch.relu(x + y)


class BasicEncoder(nn.Module):
    def __init__(self, output_dim: int = 128, norm_fn: str = "batch"):
        super().__init__()
        self.norm1 = make_norm(norm_fn, 64, 8)
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3)
        self.layer1 = self._stage(64, 64, norm_fn, stride=1)
        self.layer2 = self._stage(64, 96, norm_fn, stride=2)
        self.layer3 = self._stage(96, 128, norm_fn, stride=2)
        self.conv2 = nn.Conv2d(128, output_dim, kernel_size=1)

    @staticmethod
    def _stage(in_planes: int, planes: int, norm_fn: str, stride: int) -> nn.Sequential:
        return nn.Sequential(ResidualBlock(in_planes, planes, norm_fn, stride),
                             ResidualBlock(planes, planes, norm_fn, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: [N, 3, H, W] -> [N, output_dim, H/8, W/8]
        x = torch.relu(self.norm1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.conv2(x)
