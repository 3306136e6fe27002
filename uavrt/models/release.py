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


def build_network(network: str, config: dict, device=None, dtype: torch.dtype | None = None) -> torch.nn.Module:
    """The network of `config`; with `device`, built on meta and materialised (uninitialised)
    directly at `device` and `dtype` (floating tensors), with no CPU copy and no random init."""
    if device is not None:
        with torch.device("meta"):
            module = build_network(network, config)
        return materialize(module, device, dtype)
    check_choice("network", network, NETWORKS)
    if network == "unet":
        from .unet import UNetVideoModel
        return UNetVideoModel.from_config(config)
    if network.startswith("vae"):
        from .vae import VideoVAEDecoder
        return VideoVAEDecoder.from_config(config)
    from .raft import RAFT
    return RAFT.from_config(config)


def materialize(module: torch.nn.Module, device, dtype: torch.dtype | None = None) -> torch.nn.Module:
    """Give every parameter and buffer of a meta-built `module` uninitialised storage on `device`
    (floating ones at `dtype` when given). Tensors shared between submodules stay shared (the
    U-Net's rotary `freqs`), which `Module.to_empty` cannot do under FakeTensorMode ("Couldn't
    swap"). Parameters do not require grad: these are inference networks. Under FakeTensorMode
    this gives fake device tensors (the CPU dry run); on a GPU, real ones to load weights into."""
    from ..devices import resolve_device
    device = resolve_device(device)
    made: dict = {}  # id(old) -> (old, new): keeping `old` alive keeps its id unique

    def place(t, param: bool):
        if id(t) not in made:
            d = dtype if (dtype is not None and t.is_floating_point()) else t.dtype
            new = torch.empty_like(t, device=device, dtype=d)
            made[id(t)] = (t, torch.nn.Parameter(new, requires_grad=False) if param else new)
        return made[id(t)][1]

    for mod in module.modules():
        for name, p in list(mod._parameters.items()):
            if p is not None:
                mod._parameters[name] = place(p, True)
        for name, b in list(mod._buffers.items()):
            if b is not None:
                mod._buffers[name] = place(b, False)
    return module


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


def load_network(weights_dir, network: str, device=None, dtype: torch.dtype | None = None) -> Checkpoint:
    """The network with its release weights. With `device` (and `dtype`) the module is built in
    place there and each checkpoint tensor is copied once into it (cast on the way): no fp32 CPU
    module and no `.to()` afterwards, which backends skip for a module already in place."""
    check_choice("network", network, NETWORKS)
    weights_dir = Path(weights_dir)
    if not weights_dir.is_dir():
        raise WeightsError(f"weights folder {str(weights_dir)!r} does not exist")
    cfg = network_config(weights_dir, network)
    path = weight_file(weights_dir, network)
    sd = release_state_dict(network, load_state_dict(path), path)
    module = build_network(network, cfg, device, dtype)
    load_into(module, sd, f"{network} ({path})", upcast=device is None)
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
