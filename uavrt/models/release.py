"""Build the networks from a weights folder in the release layout (see loading.py)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import torch

from ..errors import WeightsError, check_choice
from ..fsutil import sha256_file
from .loading import (EXPECTED_CLASS, LAYOUT, config_file, load_into, load_state_dict, read_config,
                      weight_file)

NETWORKS = tuple(LAYOUT)


def packaged_config(name: str) -> dict:
    """A full-size release config shipped with uavrt (uavrt/models/configs/<name>.json)."""
    return json.loads(resources.files("uavrt.models").joinpath("configs", f"{name}.json").read_text())


def build_network(network: str, config: dict) -> torch.nn.Module:
    check_choice("network", network, NETWORKS)
    if network == "unet":
        from .unet import UNetVideoModel
        return UNetVideoModel.from_config(config)
    if network.startswith("vae"):
        from .vae import VideoVAEDecoder
        return VideoVAEDecoder.from_config(config)
    from .raft import RAFT
    return RAFT.from_config(config)


def network_config(weights_dir, network: str) -> dict:
    if network == "raft":  # raft-things.pth ships without a config: the architecture is fixed
        return packaged_config("raft_things")
    return read_config(config_file(weights_dir, network), EXPECTED_CLASS[network])


def release_state_dict(network: str, sd: dict, path) -> dict:
    """Map a release checkpoint onto our module's names (drop the VAE encoder, DataParallel)."""
    if network.startswith("vae"):
        from .vae import ENCODER_PREFIXES
        # keys that are neither encoder nor decoder stay, so the strict check names them
        return {k: v for k, v in sd.items() if not k.startswith(ENCODER_PREFIXES)}
    if network == "raft":
        from .raft import strip_dataparallel
        return strip_dataparallel(sd)
    return sd


@dataclass(frozen=True)
class Checkpoint:
    """One release network: its module (weights loaded), config, weights sha256 and file."""

    module: torch.nn.Module
    config: dict
    weights_hash: str
    path: Path


def load_network(weights_dir, network: str) -> Checkpoint:
    check_choice("network", network, NETWORKS)
    weights_dir = Path(weights_dir)
    if not weights_dir.is_dir():
        raise WeightsError(f"weights folder {str(weights_dir)!r} does not exist")
    cfg = network_config(weights_dir, network)
    path = weight_file(weights_dir, network)
    sd = release_state_dict(network, load_state_dict(path), path)
    module = build_network(network, cfg)
    load_into(module, sd, f"{network} ({path})")
    return Checkpoint(module.eval(), cfg, sha256_file(path), path)


def scheduler_configs(weights_dir) -> tuple:
    """(DDIM config dict, low-res DDPM config dict) from the release folders."""
    out = []
    for sub in ("scheduler", "low_res_scheduler"):
        p = Path(weights_dir) / sub / "scheduler_config.json"
        if not p.is_file():
            raise WeightsError(f"missing scheduler config {str(p)!r} (a diffusers scheduler_config.json)")
        out.append(read_config(p))
    return tuple(out)
