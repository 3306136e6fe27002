"""RAFT's update operator: motion encoder -> separable ConvGRU -> flow head (+ upsampling mask).

All of it runs at 1/8 resolution once per refinement iteration.
"""

from __future__ import annotations

import torch
from torch import nn


class BasicMotionEncoder(nn.Module):
    """Encodes the correlation lookup and the current flow into 128 motion channels."""

    def __init__(self, corr_planes: int):
        super().__init__()
        self.convc1 = nn.Conv2d(corr_planes, 256, 1, padding=0)
        self.convc2 = nn.Conv2d(256, 192, 3, padding=1)
        self.convf1 = nn.Conv2d(2, 128, 7, padding=3)
        self.convf2 = nn.Conv2d(128, 64, 3, padding=1)
        self.conv = nn.Conv2d(64 + 192, 128 - 2, 3, padding=1)

    def forward(self, flow: torch.Tensor, corr: torch.Tensor) -> torch.Tensor:
        # flow: [N, 2, h, w], corr: [N, levels*(2r+1)^2, h, w] -> [N, 128, h, w]
        cor = torch.relu(self.convc2(torch.relu(self.convc1(corr))))
        flo = torch.relu(self.convf2(torch.relu(self.convf1(flow))))
        out = torch.relu(self.conv(torch.cat([cor, flo], dim=1)))
        return torch.cat([out, flow], dim=1)  # the raw flow rides along as the last 2 channels


class SepConvGRU(nn.Module):
    """A ConvGRU applied twice: once with 1x5 kernels (horizontal), once with 5x1 (vertical)."""

    def __init__(self, hidden_dim: int = 128, input_dim: int = 192 + 128):
        super().__init__()
        c = hidden_dim + input_dim
        self.convz1 = nn.Conv2d(c, hidden_dim, (1, 5), padding=(0, 2))
        self.convr1 = nn.Conv2d(c, hidden_dim, (1, 5), padding=(0, 2))
        self.convq1 = nn.Conv2d(c, hidden_dim, (1, 5), padding=(0, 2))
        self.convz2 = nn.Conv2d(c, hidden_dim, (5, 1), padding=(2, 0))
        self.convr2 = nn.Conv2d(c, hidden_dim, (5, 1), padding=(2, 0))
        self.convq2 = nn.Conv2d(c, hidden_dim, (5, 1), padding=(2, 0))

    @staticmethod
    def _gru_step(h, x, convz, convr, convq):
        hx = torch.cat([h, x], dim=1)
        z = torch.sigmoid(convz(hx))
        r = torch.sigmoid(convr(hx))
        q = torch.tanh(convq(torch.cat([r * h, x], dim=1)))
        return (1 - z) * h + z * q

    def forward(self, h: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        h = self._gru_step(h, x, self.convz1, self.convr1, self.convq1)
        return self._gru_step(h, x, self.convz2, self.convr2, self.convq2)


class FlowHead(nn.Module):
    def __init__(self, input_dim: int = 128, hidden_dim: int = 256):
        super().__init__()
        self.conv1 = nn.Conv2d(input_dim, hidden_dim, 3, padding=1)
        self.conv2 = nn.Conv2d(hidden_dim, 2, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(torch.relu(self.conv1(x)))


class BasicUpdateBlock(nn.Module):
    def __init__(self, corr_planes: int, hidden_dim: int = 128, mask_size: int = 8):
        super().__init__()
        self.encoder = BasicMotionEncoder(corr_planes)
        self.gru = SepConvGRU(hidden_dim=hidden_dim, input_dim=128 + hidden_dim)
        self.flow_head = FlowHead(hidden_dim, hidden_dim=256)
        # index names 0 and 2 are the checkpoint's (Conv, ReLU, Conv)
        self.mask = nn.Sequential(nn.Conv2d(128, 256, 3, padding=1), nn.ReLU(),
                                  nn.Conv2d(256, mask_size ** 2 * 9, 1, padding=0))

    def forward(self, net, inp, corr, flow, with_mask: bool = True):
        """net: hidden state, inp: context features, corr: lookup, flow: current flow (all 1/8).

        Returns (net, mask or None, delta_flow). In test mode only the last iteration's mask is
        used, so callers skip the mask head elsewhere (`with_mask=False`): same result, less work.
        """
        motion = self.encoder(flow, corr)
        net = self.gru(net, torch.cat([inp, motion], dim=1))
        delta_flow = self.flow_head(net)
        # official: the 0.25 "balances gradients" in training; it changes the softmax, so keep it
        mask = 0.25 * self.mask(net) if with_mask else None
        return net, mask, delta_flow
