"""`--random-weights`: the RELEASE architecture (full-size configs) with seeded random weights.

Performance work needs the real shapes, not the real values: every network is built from the
packaged release config (uavrt/models/configs/*.json) and filled by the demo's seeded init, and
the text encoder is a CLIP text tower of the release's size (23 layers, width 1024; see
tests/data/golden/manifests/text_encoder_ASSUMED_sd_x4_upscaler.tsv). The folder is written once
in the release layout, so loading goes through exactly the code that loads real weights.
Outputs are NOT upscales: every report made with these weights says so.

Weights are stored fp16 (safetensors) to halve the 2.8 GB U-Net file; loading up-casts them.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import torch

from ..fsutil import cache_root

MARKER = "RANDOM_RELEASE_WEIGHTS.json"
# SD x4 upscaler text tower (OpenCLIP ViT-H text encoder minus its last layer)
CLIP_TEXT = dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=23, num_attention_heads=16,
                 max_position_embeddings=77, hidden_act="gelu", projection_dim=512)
CLIP_VOCAB = 49408


def _save_fp16(module: torch.nn.Module, path: Path, prefix: str = "") -> None:
    from safetensors.torch import save_file
    sd = {}
    for k, v in module.state_dict().items():
        keep = not v.is_floating_point() or "freqs" in k  # rotary frequencies stay exact
        sd[prefix + k] = (v if keep else v.half()).detach().contiguous().clone()  # clone: no aliases
    save_file(sd, str(path))


def _write_networks(root: Path, seed: int) -> None:
    from ..models.demo import _seeded_init
    from ..models.release import build_network, packaged_config
    for network, sub, stem in (("unet", "unet", "unet_video"), ("vae_3d", "vae", "vae_3d"),
                               ("vae_video", "vae", "vae_video")):
        cfg = packaged_config(stem)
        (root / sub).mkdir(parents=True, exist_ok=True)
        (root / sub / f"{stem}_config.json").write_text(json.dumps(cfg, indent=1))
        module = _seeded_init(build_network(network, cfg), seed + len(stem))
        _save_fp16(module, root / sub / f"{stem}.safetensors")
        del module
    (root / "propagator").mkdir(exist_ok=True)
    raft = _seeded_init(build_network("raft", packaged_config("raft_things")), seed + 5, scale=1.0)
    _save_fp16(raft, root / "propagator" / "raft-things.safetensors", prefix="module.")


def _write_text(root: Path, seed: int) -> None:
    from transformers import CLIPTextConfig, CLIPTextModel
    from ..models.demo import _write_text_encoder
    _write_text_encoder(root, seed)  # the demo's byte-level tokenizer (+ a tiny model, replaced next)
    tok = json.loads((root / "tokenizer" / "vocab.json").read_text())
    cfg = CLIPTextConfig(vocab_size=CLIP_VOCAB, bos_token_id=tok["<|startoftext|>"],
                         eos_token_id=tok["<|endoftext|>"], pad_token_id=tok["<|endoftext|>"], **CLIP_TEXT)
    with torch.random.fork_rng():  # seeded without touching the caller's RNG
        torch.manual_seed(seed)
        model = CLIPTextModel(cfg).half()
    shutil.rmtree(root / "text_encoder")
    model.save_pretrained(str(root / "text_encoder"))


def random_release_dir(seed: int = 0, base: Path | None = None) -> Path:
    """The release-size random model in the release layout, written once (atomically) under the
    uavrt cache (UAVRT_CACHE_DIR overrides)."""
    from .. import __version__
    from ..models.demo import DDIM, LOW_RES
    base = Path(base) if base is not None else cache_root()
    root = base / f"random-release-v{__version__}-s{seed}"
    if (root / MARKER).is_file():
        return root
    base.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=root.name + ".", dir=base))
    try:
        _write_networks(tmp, seed)
        for sub, cfg in (("scheduler", DDIM), ("low_res_scheduler", LOW_RES)):
            (tmp / sub).mkdir()
            (tmp / sub / "scheduler_config.json").write_text(json.dumps(cfg, indent=1))
        _write_text(tmp, seed + 6)
        (tmp / MARKER).write_text(json.dumps({"random_release_weights": True, "seed": seed, "uavrt": __version__}))
        if root.exists() and not (root / MARKER).is_file():
            shutil.rmtree(root)  # an interrupted earlier write
        try:
            os.replace(tmp, root)
        except OSError:  # another process finished first: keep its copy
            if not (root / MARKER).is_file():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return root
