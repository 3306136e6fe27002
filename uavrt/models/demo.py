"""A tiny seeded model in the release layout, so every path runs on a fresh CPU machine.

The demo writes real files (configs, .bin checkpoints, a CLIP text encoder and tokenizer) and
the runtime loads them through the same code as release weights. Its output is NOT an upscaled
video: the weights are random. Configs are the golden tiny configs (official architecture,
narrow channels).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from .. import __version__

# what `--demo` prints, so nobody mistakes its output for the release model's
DEMO_NOTICE = "DEMO MODEL (tiny, random weights): the output shows the pipeline runs, it is not an upscale"

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


def write_demo_weights(root, seed: int = 0, with_raft: bool = True) -> Path:
    """Write the tiny demo model in the release layout under `root` (idempotent)."""
    from .release import build_network, packaged_config
    root = Path(root)
    marker = root / "DEMO_MODEL.json"
    if marker.is_file() and json.loads(marker.read_text()).get("raft", False) >= with_raft:
        return root
    root.mkdir(parents=True, exist_ok=True)
    (root / "unet").mkdir(exist_ok=True)
    (root / "vae").mkdir(exist_ok=True)
    (root / "unet" / "unet_video_config.json").write_text(json.dumps(DEMO_UNET, indent=1))
    torch.save(_seeded_init(build_network("unet", DEMO_UNET), seed + 1).state_dict(), root / "unet" / "unet_video.bin")
    for k, (name, cfg) in enumerate(DEMO_VAE.items()):
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


def demo_weights_dir(seed: int = 0, with_raft: bool = True) -> Path:
    """The demo model, written once into the user cache (UAVRT_CACHE_DIR overrides)."""
    from ..fsutil import cache_root
    return write_demo_weights(cache_root() / f"demo-v{__version__}-s{seed}", seed, with_raft)
