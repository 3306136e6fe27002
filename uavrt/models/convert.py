"""`uavrt convert`: release checkpoints (.bin/.pth pickles) -> safetensors in the same layout.

safetensors loads without unpickling (safe) and memory-maps (fast). Each checkpoint is validated
against its model (strict names and shapes) before it is written; the output folder appears
atomically (written beside, renamed at the end).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import torch

from ..errors import OutputExistsError, WeightsError
from .loading import LAYOUT, config_file, load_state_dict, weight_file
from .release import build_network, network_config, release_state_dict

COPIED = ("text_encoder", "tokenizer", "scheduler", "low_res_scheduler")


def convert_weights(weights_dir, out_dir, fp16: bool = False, overwrite: bool = False) -> list:
    from safetensors.torch import save_file
    src, out = Path(weights_dir), Path(out_dir)
    if not src.is_dir():
        raise WeightsError(f"weights folder {str(src)!r} does not exist")
    if out.exists() and not overwrite:
        raise OutputExistsError(out)
    found = [n for n in LAYOUT if _has(src, n)]
    if not found:
        raise WeightsError(f"no checkpoint found in {str(src)!r}: expected unet/unet_video.bin, vae/vae_3d.bin, ...")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial.", dir=out.parent))
    written = []
    try:
        for network in found:
            path = weight_file(src, network)
            sd = load_state_dict(path)
            mapped = release_state_dict(network, sd, path)
            with torch.device("meta"):
                module = build_network(network, network_config(src, network))
            from .loading import check_state_dict
            check_state_dict(module, mapped, f"{network} ({path})")
            sub, cfg_name, stem = LAYOUT[network]
            (tmp / sub).mkdir(exist_ok=True)
            if cfg_name:
                shutil.copy2(config_file(src, network), tmp / sub / cfg_name)
            # keep the release's key names (incl. 'module.' and the VAE encoder) so the folder
            # stays a drop-in release layout; clone: safetensors refuses shared storage (the
            # U-Net's rotary freqs appear under 17 names)
            tensors = {k: (v.half() if fp16 and v.is_floating_point() else v).contiguous().clone() for k, v in sd.items()}
            target = tmp / sub / f"{stem}.safetensors"
            save_file(tensors, str(target), metadata={"format": "pt", "source": path.name,
                                                       "dtype": "fp16" if fp16 else "as-source"})
            written.append(out / sub / target.name)
        for name in COPIED:
            if (src / name).is_dir():
                shutil.copytree(src / name, tmp / name)
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return written


def _has(src: Path, network: str) -> bool:
    try:
        weight_file(src, network)
        return True
    except WeightsError:
        return False
