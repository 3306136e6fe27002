"""The tiny demo models in the release layout, so every path runs on a fresh CPU machine.

Two variants, both real files loaded by the same code as release weights:
- trained (`demo_weights_dir()`, what `--demo` / `Upscaler.demo()` use): the U-Net, the vae_3d
  decoder and the text encoder shipped in uavrt/models/demo_trained/ (trained on synthetic video
  by uavrt/tools/train_demo.py, see TRAINING.json there), plus the seeded random parts that were
  not trained (RAFT, the vae_video decoder), the schedulers and the byte-level tokenizer.
  Its output is a soft but real x4 upscale.
- random (`demo_weights_dir(trained=False)`, `write_demo_weights`): every network seeded random
  at the golden tiny configs (official architecture, narrow channels); for parity tests. Its
  output is NOT an upscaled video.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from importlib import resources
from pathlib import Path

import torch

from .. import __version__

DEMO_UNET = {
    "_class_name": "UNetVideoModel", "act_fn": "silu", "attention_head_dim": [1, 1, 1, 2],
    "block_out_channels": [32, 32, 64, 64], "center_input_sample": False, "cross_attention_dim": 32,
    "down_block_types": ["DownBlock3D", "CrossAttnDownBlock3D", "CrossAttnDownBlock3D", "CrossAttnDownBlock3D"],
    "downsample_padding": 1, "dual_cross_attention": False, "flip_sin_to_cos": True, "freq_shift": 0,
    "in_channels": 7, "layers_per_block": 2, "mid_block_scale_factor": 1, "norm_eps": 1e-05,
    "norm_num_groups": 32, "num_class_embeds": 1000, "only_cross_attention": [True, True, True, False],
    "out_channels": 4, "sample_size": 16,
    "up_block_types": ["CrossAttnUpBlock3D", "CrossAttnUpBlock3D", "CrossAttnUpBlock3D", "UpBlock3D"],
    "use_linear_projection": True, "down_temporal_idx": [0, 1, 2, 3], "mid_temporal": True,
    "up_temporal_idx": [0, 1, 2, 3], "temporal_module_config": {"attention_block_types": ["", ""]},
}
_VAE_COMMON = {
    "_class_name": "AutoencoderKLVideo", "act_fn": "silu", "block_out_channels": [32, 32, 64],
    "down_block_types": ["DownEncoderBlock3D"] * 3, "in_channels": 3, "latent_channels": 4,
    "layers_per_block": 2, "norm_num_groups": 32, "out_channels": 3, "sample_size": 256,
    "scaling_factor": 0.08333,
}
DEMO_VAE = {
    "vae_3d": dict(_VAE_COMMON, up_block_types=["UpDecoderBlock3D"] * 3),
    "vae_video": dict(_VAE_COMMON, up_block_types=["UpDecoderBlock3D_plus"] * 3, condition_img=True,
                      condition_channels=32, use_temporal_block=True),
}
# The trained demo model (uavrt/tools/train_demo.py; weights in uavrt/models/demo_trained/): the
# release structures at the smallest widths the configs allow, three levels, one ResNet per level.
# Fewer GroupNorm groups than the release's 32: with 32 channels, 32 groups would normalise every
# channel on its own and erase the absolute colour levels a 32-wide network has to carry.
TRAINED_UNET = dict(
    DEMO_UNET, block_out_channels=[32, 32, 32], layers_per_block=1, attention_head_dim=[1, 1, 1], norm_num_groups=4,
    down_block_types=["DownBlock3D", "CrossAttnDownBlock3D", "CrossAttnDownBlock3D"],
    up_block_types=["CrossAttnUpBlock3D", "CrossAttnUpBlock3D", "UpBlock3D"],
    only_cross_attention=[True, True, False], down_temporal_idx=[0, 1, 2], up_temporal_idx=[0, 1, 2])
TRAINED_VAE_3D = dict(DEMO_VAE["vae_3d"], block_out_channels=[32, 32, 32], layers_per_block=1, norm_num_groups=1)
DDIM = {"_class_name": "DDIMScheduler", "num_train_timesteps": 1000, "beta_start": 0.0001, "beta_end": 0.02,
        "beta_schedule": "scaled_linear", "prediction_type": "v_prediction", "clip_sample": False,
        "set_alpha_to_one": False, "steps_offset": 1, "trained_betas": None}
LOW_RES = {"_class_name": "DDPMScheduler", "num_train_timesteps": 1000, "beta_start": 0.0001, "beta_end": 0.02,
           "beta_schedule": "scaled_linear", "clip_sample": True, "variance_type": "fixed_small",
           "prediction_type": "epsilon", "trained_betas": None}


def _seeded_init(module: torch.nn.Module, seed: int, scale: float = 0.2) -> torch.nn.Module:
    """Random weights everywhere (also the branches the release zero-initialises) so every path
    contributes; small enough to keep activations finite."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.state_dict().items():
            if not p.is_floating_point() or "freqs" in name or "running_var" in name:
                continue
            if name.endswith("running_mean"):
                p.zero_()
            elif "norm" in name and name.endswith("weight"):
                p.copy_(1 + 0.1 * torch.randn(p.shape, generator=g))
            else:
                fan_in = p[0].numel() if p.dim() > 1 else p.numel()
                p.copy_(torch.randn(p.shape, generator=g) * scale / max(fan_in, 1) ** 0.5)
    return module


def _bytes_to_unicode() -> list:
    # GPT-2/CLIP byte-level alphabet: every byte maps to a printable character
    bs = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for c in cs]


def _write_text_encoder(root: Path, seed: int) -> None:
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer
    tok_dir = root / "tokenizer"
    tok_dir.mkdir(parents=True, exist_ok=True)
    chars = _bytes_to_unicode()
    vocab = {c: i for i, c in enumerate(chars)}
    vocab.update({c + "</w>": len(chars) + i for i, c in enumerate(chars)})
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    (tok_dir / "vocab.json").write_text(json.dumps(vocab))
    (tok_dir / "merges.txt").write_text("#version: 0.2\n")
    CLIPTokenizer.from_pretrained(str(tok_dir)).save_pretrained(str(tok_dir))
    cfg = CLIPTextConfig(vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, max_position_embeddings=77, hidden_act="gelu",
                         bos_token_id=vocab["<|startoftext|>"], eos_token_id=vocab["<|endoftext|>"],
                         pad_token_id=vocab["<|endoftext|>"])
    torch.manual_seed(seed)
    CLIPTextModel(cfg).save_pretrained(str(root / "text_encoder"))


def write_demo_weights(root, seed: int = 0, with_raft: bool = True, _skip: tuple = ()) -> Path:
    """Write the tiny demo model in the release layout under `root` (idempotent).

    _skip: networks not to write (the trained folder replaces them)."""
    from .release import build_network, packaged_config
    root = Path(root)
    marker = root / "DEMO_MODEL.json"
    if marker.is_file() and json.loads(marker.read_text()).get("raft", False) >= with_raft:
        return root
    root.mkdir(parents=True, exist_ok=True)
    (root / "unet").mkdir(exist_ok=True)
    (root / "vae").mkdir(exist_ok=True)
    if "unet" not in _skip:
        (root / "unet" / "unet_video_config.json").write_text(json.dumps(DEMO_UNET, indent=1))
        torch.save(_seeded_init(build_network("unet", DEMO_UNET), seed + 1).state_dict(),
                   root / "unet" / "unet_video.bin")
    for k, (name, cfg) in enumerate(DEMO_VAE.items()):
        if name in _skip:
            continue
        (root / "vae" / f"{name}_config.json").write_text(json.dumps(cfg, indent=1))
        vae = _seeded_init(build_network(name, cfg), seed + 2 + k)
        torch.save(vae.state_dict(), root / "vae" / f"{name}.bin")
    if with_raft:
        (root / "propagator").mkdir(exist_ok=True)
        raft = _seeded_init(build_network("raft", packaged_config("raft_things")), seed + 5, scale=1.0)
        torch.save({"module." + k: v for k, v in raft.state_dict().items()}, root / "propagator" / "raft-things.pth")
    for sub, cfg in (("scheduler", DDIM), ("low_res_scheduler", LOW_RES)):
        (root / sub).mkdir(exist_ok=True)
        (root / sub / "scheduler_config.json").write_text(json.dumps(cfg, indent=1))
    _write_text_encoder(root, seed + 6)
    marker.write_text(json.dumps({"demo": True, "seed": seed, "raft": with_raft, "uavrt": __version__}))
    return root


# What `--demo` prints (one line, on stderr), so nobody mistakes its output for the release model's.
DEMO_NOTICE = ("DEMO MODEL: a tiny network (~1 M parameters) trained for minutes on synthetic video "
               "(uavrt/tools/train_demo.py); the x4 output is a soft upscale, nothing like the release "
               "model's quality (its RAFT and --vae video decoder are untrained)")

TRAINED_FILES = ("unet/unet_video_config.json", "unet/unet_video.safetensors", "vae/vae_3d_config.json",
                 "vae/vae_3d.safetensors", "text_encoder/config.json", "text_encoder/model.safetensors")


def trained_dir():
    """The packaged trained weights (uavrt/models/demo_trained/)."""
    return resources.files("uavrt.models").joinpath("demo_trained")


def trained_record() -> dict:
    """TRAINING.json of the packaged weights: settings, loss curves, sha256 of every file."""
    return json.loads(trained_dir().joinpath("TRAINING.json").read_text())


def trained_hash() -> str:
    """One sha256 over the packaged files' sha256s (names the cache folder)."""
    files = trained_record()["files"]
    return hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()


def write_trained_demo_weights(root, seed: int = 0, with_raft: bool = True) -> Path:
    """The random demo folder with the trained U-Net, vae_3d decoder and text encoder in place."""
    root = Path(root)
    marker = root / "DEMO_MODEL.json"
    want = trained_hash()
    if marker.is_file():
        m = json.loads(marker.read_text())
        if m.get("trained") == want and m.get("raft", False) >= with_raft:
            return root
    write_demo_weights(root, seed, with_raft, _skip=("unet", "vae_3d"))
    for stale in ("unet/unet_video.bin", "vae/vae_3d.bin"):  # safetensors wins anyway: no confusion
        (root / stale).unlink(missing_ok=True)
    src = trained_dir()
    for rel in TRAINED_FILES:
        with resources.as_file(src.joinpath(rel)) as f:
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(f, root / rel)
    with resources.as_file(src.joinpath("TRAINING.json")) as f:
        shutil.copyfile(f, root / "TRAINING.json")
    marker.write_text(json.dumps({"demo": True, "trained": want, "seed": seed, "raft": with_raft,
                                  "uavrt": __version__}))
    return root


def demo_weights_dir(seed: int = 0, with_raft: bool = True, trained: bool = True) -> Path:
    """The demo model, written once into the user cache (UAVRT_CACHE_DIR overrides).

    trained=True: the packaged trained networks (seed only seeds the untrained RAFT/vae_video);
    trained=False: every network seeded random from `seed`.
    """
    from ..fsutil import cache_root
    base = cache_root()
    if trained:
        return write_trained_demo_weights(base / f"demo-trained-{trained_hash()[:12]}-s{seed}", seed, with_raft)
    return write_demo_weights(base / f"demo-v{__version__}-s{seed}", seed, with_raft)
