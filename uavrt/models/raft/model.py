"""RAFT (Teed & Deng 2020), raft-things architecture, in test mode, as Upscale-A-Video runs it.

Data path: fnet(image1, image2) -> correlation pyramid (float32); cnet(image1) -> hidden state +
context; `iters` x [window lookup -> update block -> coords1 += delta]; convex x8 upsampling.
Inputs are the [-1, 1] frames as they are: Upscale-A-Video's copy comments out RAFT's
0-255 -> [-1, 1] normalisation, and its frames are already in [-1, 1].
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ...errors import ConfigError, WeightsError, check_range
from .corr import build_corr_pyramid, lookup, window_offsets
from .extractor import BasicEncoder
from .update import BasicUpdateBlock

MIN_SIZE = 128  # below this the 1/64 correlation level is 1 px wide and the official code gives NaN
_DP_PREFIX = "module."
# argparse fields of the official `args` that are fixed here (False is the only supported value)
_FIXED_FALSE = ("small", "mixed_precision", "alternate_corr")
_IGNORED = ("raft_model",)  # the checkpoint path in the official args


def load_config(name: str = "raft_things") -> dict:
    """The release config shipped in uavrt/models/configs/<name>.json."""
    path = Path(__file__).resolve().parent.parent / "configs" / f"{name}.json"
    if not path.is_file():
        raise ConfigError("config", name, "the name of a file in uavrt/models/configs (e.g. 'raft_things')")
    return json.loads(path.read_text())


def strip_dataparallel(state_dict: dict) -> dict:
    """Drop DataParallel's 'module.' prefix (raft-things.pth is saved from a DataParallel)."""
    prefixed = [k.startswith(_DP_PREFIX) for k in state_dict]
    if not any(prefixed):
        return dict(state_dict)
    if not all(prefixed):
        odd = next(k for k, p in zip(state_dict, prefixed) if not p)
        raise WeightsError(f"RAFT state dict mixes '{_DP_PREFIX}'-prefixed and plain names (e.g. {odd!r}); "
                           f"expected all or none prefixed")
    return {k[len(_DP_PREFIX):]: v for k, v in state_dict.items()}


def check_flow_size(height: int, width: int, param: str = "flow size") -> None:
    """RAFT needs multiples of 8 (1/8 grid) and >= 128 px (the official code returns NaN below)."""
    if height < MIN_SIZE or width < MIN_SIZE:
        raise ConfigError(param, (height, width), f"height and width >= {MIN_SIZE} at RAFT's resolution",
                          hint="the coarsest correlation level would be 1 px and RAFT returns NaN there; "
                               "upscale the frames before computing flows")
    if height % 8 or width % 8:
        raise ConfigError(param, (height, width), "height and width that are multiples of 8")


def coords_grid(n: int, h: int, w: int, device=None) -> torch.Tensor:
    """[N, 2, h, w] pixel coordinates, channel 0 = x, channel 1 = y."""
    ys = torch.arange(h, dtype=torch.float32, device=device).reshape(h, 1).expand(h, w)
    xs = torch.arange(w, dtype=torch.float32, device=device).reshape(1, w).expand(h, w)
    return torch.stack([xs, ys], dim=0).unsqueeze(0).expand(n, 2, h, w)


def upsample_flow(flow: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Convex x8 upsampling: each fine pixel is a softmax-weighted mix of its 3x3 coarse neighbours.

    flow: [N, 2, h, w] (float32), mask: [N, 9*64, h, w] -> [N, 2, 8h, 8w].
    The 3x3 neighbourhood is gathered with pad + 9 slices (the same values as F.unfold, in
    its (ky, kx) row-major order) so export needs no Im2Col.
    """
    n, _, h, w = flow.shape
    mask = torch.softmax(mask.float().reshape(n, 1, 9, 8, 8, h, w), dim=2)
    padded = F.pad(8 * flow, (1, 1, 1, 1))
    taps = [padded[:, :, ky:ky + h, kx:kx + w] for ky in range(3) for kx in range(3)]
    up = torch.stack(taps, dim=2).reshape(n, 2, 9, 1, 1, h, w)
    up = torch.sum(mask * up, dim=2)  # [N, 2, 8(sub-row), 8(sub-col), h, w]
    return up.permute(0, 1, 4, 2, 5, 3).reshape(n, 2, 8 * h, 8 * w)


class RAFT(nn.Module):
    def __init__(self, iters: int = 20, corr_levels: int = 4, corr_radius: int = 4,
                 hidden_dim: int = 128, context_dim: int = 128):
        super().__init__()
        self.iters = check_range("iters", iters, 1, 1000, integer=True)
        self.corr_levels, self.corr_radius = corr_levels, corr_radius
        self.hidden_dim, self.context_dim = hidden_dim, context_dim
        self.fnet = BasicEncoder(output_dim=256, norm_fn="instance")
        self.cnet = BasicEncoder(output_dim=hidden_dim + context_dim, norm_fn="batch")
        self.update_block = BasicUpdateBlock(corr_levels * (2 * corr_radius + 1) ** 2, hidden_dim=hidden_dim)

    @classmethod
    def from_config(cls, config: dict) -> RAFT:
        """From the official argparse fields (small, mixed_precision, alternate_corr) + iters."""
        cfg = {k: v for k, v in config.items() if not k.startswith("_") and k not in _IGNORED}
        for key in _FIXED_FALSE:
            if cfg.pop(key, False):
                raise ConfigError(f"raft.{key}", True, "false (only raft-things, small=False, with the "
                                  "all-pairs correlation is supported; precision is the backend's choice)")
        dropout = cfg.pop("dropout", 0)
        if dropout:
            raise ConfigError("raft.dropout", dropout, "0 (inference only)")
        allowed = ("iters", "corr_levels", "corr_radius")
        unknown = sorted(set(cfg) - set(allowed))
        if unknown:
            raise ConfigError("raft config key", unknown[0], "one of " + ", ".join(allowed + _FIXED_FALSE))
        return cls(**cfg)

    def forward(self, image1: torch.Tensor, image2: torch.Tensor, iters: int | None = None):
        """image1, image2: [N, 3, H, W] in [-1, 1], H and W multiples of 8 and >= 128.

        Returns (flow_low [N, 2, H/8, W/8] = coords1 - coords0, flow_up [N, 2, H, W]), float32.
        """
        iters = self.iters if iters is None else check_range("iters", iters, 1, 1000, integer=True)
        n, _, h, w = image1.shape
        if not (torch.compiler.is_exporting() or torch.compiler.is_compiling()):
            # eager only: under export the spec's DimRange enforces this, and a Python check on
            # a symbolic size would add guards to the graph
            check_flow_size(h, w, "RAFT image size")

        # features: both images in one batch (InstanceNorm is per sample, so this is exact)
        fmaps = self.fnet(torch.cat([image1, image2], dim=0))  # [2N, 256, h/8, w/8]
        pyramid = build_corr_pyramid(fmaps[:n], fmaps[n:], self.corr_levels)

        ctx = self.cnet(image1)  # [N, hidden+context, h/8, w/8]
        net = torch.tanh(ctx[:, :self.hidden_dim])
        inp = torch.relu(ctx[:, self.hidden_dim:])

        coords0 = coords_grid(n, h // 8, w // 8, device=image1.device)
        coords1 = coords0
        offsets = window_offsets(self.corr_radius, device=image1.device)
        mask = None
        # coords stay float32 (the official keeps coords/corr in fp32 even under autocast); the
        # casts to net.dtype are no-ops in fp32 and let the convolutions run in fp16.
        for itr in range(iters):  # a fixed count: unrolled at export
            corr = lookup(pyramid, coords1, offsets).to(net.dtype)
            flow = coords1 - coords0
            net, mask, delta = self.update_block(net, inp, corr, flow.to(net.dtype), with_mask=itr == iters - 1)
            coords1 = coords1 + delta.float()

        flow_low = coords1 - coords0
        return flow_low, upsample_flow(flow_low, mask)


def build_raft(state_dict: dict, config: dict | None = None, *, iters: int | None = None) -> RAFT:
    """A RAFT in eval mode with the given weights (with or without the 'module.' prefix)."""
    model = RAFT.from_config(load_config() if config is None else config)
    if iters is not None:
        model.iters = check_range("iters", iters, 1, 1000, integer=True)
    sd = strip_dataparallel(state_dict)
    try:
        missing, unexpected = model.load_state_dict(sd, strict=False)
    except RuntimeError as e:  # shape mismatches
        raise WeightsError(f"RAFT weights do not fit the raft-things architecture: {e}") from None
    if missing or unexpected:
        raise WeightsError(f"RAFT weights: missing {sorted(missing)[:5]} ({len(missing)}), "
                           f"unexpected {sorted(unexpected)[:5]} ({len(unexpected)})")
    return model.eval()
