"""Checkpoint and config loading with errors that say exactly what is wrong.

Release layout (`<weights>/`):
  unet/unet_video_config.json, unet/unet_video.{safetensors,bin}
  vae/vae_3d_config.json, vae/vae_3d.{safetensors,bin}, vae/vae_video_config.json, vae/vae_video.*
  propagator/raft-things.{safetensors,pth}
  text_encoder/, tokenizer/ (transformers folders), scheduler/scheduler_config.json,
  low_res_scheduler/scheduler_config.json
`.bin`/`.pth` load through torch.load(weights_only=True); `.safetensors` is preferred when present.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from ..errors import WeightsError

LAYOUT = {
    "unet": ("unet", "unet_video_config.json", "unet_video"),
    "vae_3d": ("vae", "vae_3d_config.json", "vae_3d"),
    "vae_video": ("vae", "vae_video_config.json", "vae_video"),
    "raft": ("propagator", None, "raft-things"),
}
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pth", ".pt")
# the release's vae_3d_config.json says AutoencoderKL3D although inference builds it as
# AutoencoderKLVideo: accept both
EXPECTED_CLASS = {"unet": ("UNetVideoModel",), "vae_3d": ("AutoencoderKLVideo", "AutoencoderKL3D"),
                  "vae_video": ("AutoencoderKLVideo", "AutoencoderKL3D")}
_LAYOUT_HINT = ("expected the release layout <weights>/{unet/unet_video_config.json, unet/unet_video.bin, "
                "vae/vae_3d_config.json, vae/vae_3d.bin, vae/vae_video_config.json, vae/vae_video.bin, "
                "propagator/raft-things.pth, text_encoder/, tokenizer/, scheduler/, low_res_scheduler/}")


def weight_file(weights_dir, network: str) -> Path:
    sub, _, stem = LAYOUT[network]
    folder = Path(weights_dir) / sub
    for suffix in WEIGHT_SUFFIXES:
        p = folder / (stem + suffix)
        if p.is_file():
            return p
    raise WeightsError(f"missing weights for {network}: none of "
                       f"{', '.join(str(folder / (stem + s)) for s in WEIGHT_SUFFIXES[:3])} exists; {_LAYOUT_HINT}")


def config_file(weights_dir, network: str) -> Path:
    sub, name, _ = LAYOUT[network]
    p = Path(weights_dir) / sub / name
    if not p.is_file():
        raise WeightsError(f"missing config for {network}: {str(p)!r} does not exist; {_LAYOUT_HINT}")
    return p


def read_config(path, expected_class: tuple | None = None) -> dict:
    path = Path(path)
    try:
        cfg = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise WeightsError(f"cannot read config {str(path)!r}: {e}") from e
    if not isinstance(cfg, dict):
        raise WeightsError(f"config {str(path)!r} is not a JSON object")
    found = cfg.get("_class_name")
    if expected_class and found is not None and found not in expected_class:
        raise WeightsError(f"config {str(path)!r} is for class {found!r}, expected "
                           + " or ".join(repr(c) for c in expected_class))
    return cfg


def load_state_dict(path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"missing weights file {str(path)!r}")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file
            sd = load_file(str(path))
        else:
            sd = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:  # corrupt/truncated/pickled objects: say which file
        raise WeightsError(f"cannot read weights {str(path)!r}: {type(e).__name__}: {e}") from e
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise WeightsError(f"weights {str(path)!r} are not a state dict of tensors")
    return sd


def _few(names, n=5) -> str:
    names = sorted(names)
    return ", ".join(names[:n]) + (f", ... ({len(names) - n} more)" if len(names) > n else "")


def check_state_dict(model: torch.nn.Module, sd: dict, what: str) -> None:
    """Names and shapes must match exactly (release checkpoints load with strict=True)."""
    want = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    missing, unexpected = want.keys() - sd.keys(), sd.keys() - want.keys()
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing keys ({_few(missing)})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys ({_few(unexpected)})")
        raise WeightsError(f"{what}: state dict does not match the model: " + "; ".join(parts))
    for k, shape in want.items():
        if tuple(sd[k].shape) != shape:
            raise WeightsError(f"{what}: shape mismatch for {k!r}: expected {list(shape)}, found {list(sd[k].shape)}")


def load_into(model: torch.nn.Module, sd: dict, what: str, upcast: bool = True) -> torch.nn.Module:
    """upcast: fp16 checkpoints to fp32 first (a CPU fp32 module); without it load_state_dict
    casts while copying into the module's own dtype (a module materialised in place)."""
    check_state_dict(model, sd, what)
    if upcast:
        sd = {k: (v.float() if v.is_floating_point() else v) for k, v in sd.items()}
    model.load_state_dict(sd, strict=True)
    return model
