"""Train the tiny demo model: `python -m uavrt.tools.train_demo --out DIR [--seed S] [--minutes M]`.

The networks are the release's architectures at tiny widths, trained for x4 video super-resolution
on procedural scenes (uavrt/tools/scenes.py, seeds [0, clips)) with the x4 upscaler's objective:

1. Autoencoder: an encoder used only for training (the pipeline never encodes) maps a high-res
   frame to a 4-channel latent at the low-res size: channels 0-2 are twice the 4x4 box average
   (a low-res picture at about unit variance), channel 3 is learned detail (held at mean 0 /
   variance 1 by a penalty). The release-structure `vae_3d` decoder, started as nearest x4
   upsampling (identity blocks, least-squares output conv), learns to map latent /
   scaling_factor back to the frame (3-frame chunks, as the pipeline decodes; MSE + 0.1 L1; the
   latents are jittered by N(0, 0.1) so it tolerates the diffusion's errors).
2. U-Net: the release-structure temporal U-Net (7 input channels: latent + noised low-res,
   noise-level class embedding, temporal layers) learns v-prediction under the DDIM schedule:
   x_t = sqrt(abar_t) z0 + sqrt(1 - abar_t) eps, target v = sqrt(abar_t) eps - sqrt(1 - abar_t) z0,
   t uniform in [0, 1000); the low-res frames are noised by the low-res scheduler at a level
   uniform in [0, 350] that is also the class label. The prompt embedding is, at random, the
   default prompt's, the default negative prompt's or the empty prompt's from the demo text
   encoder, with the same target: the model learns to ignore text, so guidance changes little.

Deterministic from the seed on one machine (one thread, torch.use_deterministic_algorithms).
Across CPUs the float kernels (oneDNN/MKL vector widths) may round differently, so bit-exact
hashes are only expected on the same CPU/torch build; tests check that a short run is
bit-identical twice. Writes the release layout (safetensors, fp16) plus TRAINING.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .. import __version__
from ..config import SamplerConfig
from ..models import schedulers as sch
from ..models.demo import DDIM, LOW_RES, TRAINED_UNET, TRAINED_VAE_3D, write_demo_weights
from ..models.release import build_network
from ..models.text import TextEncoder
from .scenes import downscale_x4, scene_clip

MAX_NOISE_LEVEL = 350  # the x4 upscaler's training range of low-res noise levels


@dataclass(frozen=True)
class Settings:
    seed: int = 0
    clips: int = 192  # training scenes (seeds [0, clips))
    frames: int = 8
    size: int = 64  # high-res training frames are size x size (latent size / 4)
    vae_steps: int = 400
    vae_batch: int = 4  # chunks of 3 frames, random crops of vae_crop
    vae_crop: int = 32
    vae_lr: float = 1e-3
    unet_steps: int = 1200
    unet_batch: int = 2  # clips of unet_frames frames, full frames
    unet_frames: int = 4
    unet_lr: float = 1e-3
    warmup: int = 50
    moment_weight: float = 0.02
    latent_noise: float = 0.1  # decoder sees slightly noisy latents: robust to diffusion errors
    log_every: int = 50
    checkpoint_every: int = 400  # U-Net steps between partial saves (to look at while it trains)
    dtype: str = "float16"  # storage dtype of the shipped weights (training is float32)


class Encoder(nn.Module):
    """High-res frame [N, 3, H, W] in [-1, 1] -> latent [N, 4, H/4, W/4] (diffusion scale).

    Channels 0-2 are fixed: twice the 4x4 box average of the frame (a low-res picture at about
    unit variance), so the U-Net's target is close to its own low-res input and the diffusion
    learns in minutes; channel 3 is learned and carries detail the box average loses.
    """

    def __init__(self, width: int = 32):
        super().__init__()
        self.detail = nn.Sequential(
            nn.Conv2d(3, width, 3, padding=1), nn.SiLU(),
            nn.Conv2d(width, width, 4, stride=2, padding=1), nn.SiLU(),
            nn.Conv2d(width, width, 4, stride=2, padding=1), nn.SiLU(),
            nn.Conv2d(width, 1, 1))

    def forward(self, x):
        return torch.cat([2 * F.avg_pool2d(x, 4), self.detail(x)], 1)


REFERENCE = 8.0  # a constant feature channel that keeps the single-group norms' statistics steady


@torch.no_grad()
def init_decoder_as_upsampler(dec: nn.Module, sf: float, frames_hr: torch.Tensor) -> None:
    """Start the decoder as nearest-neighbour x4 upsampling of the latent's picture channels:
    every residual branch and the attention output at zero (identity blocks), the upsampling
    convs at identity, conv_in copying the 4 latent channels plus a constant channel, and conv_out
    least-squares fitted to high-res frames. Training then only has to learn the detail."""
    for m in dec.modules():
        if hasattr(m, "conv2") and hasattr(m, "norm2"):  # decoder ResNets: zero the residual
            m.conv2.weight.zero_(); m.conv2.bias.zero_()
        if hasattr(m, "proj_attn"):
            m.proj_attn.weight.zero_(); m.proj_attn.bias.zero_()
    for block in dec.decoder.up_blocks:
        if block.upsamplers is not None:
            conv = block.upsamplers[0].conv
            conv.weight.zero_(); conv.bias.zero_()
            for c in range(conv.weight.shape[0]):
                conv.weight[c, c, 1, 1] = 1.0
    dec.post_quant_conv.weight.copy_(torch.eye(4)[:, :, None, None] * sf)  # undo the / sf
    dec.post_quant_conv.bias.zero_()
    conv_in = dec.decoder.conv_in
    conv_in.weight.zero_(); conv_in.bias.zero_()
    for c in range(4):
        conv_in.weight[c, c, 1, 1] = 1.0
    conv_in.bias[4] = REFERENCE
    norm = dec.decoder.conv_norm_out
    norm.weight.fill_(1.0); norm.bias.fill_(4.0)  # SiLU is nearly linear around 4
    # conv_out: least squares from the final features (centre tap) to the high-res pixels
    out = dec.decoder.conv_out
    out.weight.zero_(); out.bias.zero_()
    x = frames_hr  # [B, 3, 3, H, W]
    z = Encoder.forward(_FixedOnly(), _frames(x)).reshape(x.shape[0], 3, 4, x.shape[3] // 4, x.shape[4] // 4)
    feats = {}
    hook = out.register_forward_hook(lambda mod, inp, res: feats.setdefault("x", inp[0]))
    dec(z.transpose(1, 2) / sf)
    hook.remove()
    f = feats["x"].permute(0, 2, 3, 1).reshape(-1, out.in_channels)  # [N*H*W, C]
    a = torch.cat([f, torch.ones(len(f), 1)], 1).double()
    y = _frames(x).permute(0, 2, 3, 1).reshape(-1, 3).double()
    sol = torch.linalg.lstsq(a, y, driver="gelsd").solution  # [C + 1, 3]
    out.weight[:, :, 1, 1] = sol[:-1].T.float()
    out.bias.copy_(sol[-1].float())


class _FixedOnly(nn.Module):
    """The encoder with a zero detail channel (for the decoder's initial fit)."""

    def detail(self, x):
        return torch.zeros_like(x[:, :1, ::4, ::4])


def make_data(s: Settings):
    """hr: float [N, 3, T, H, W] in [-1, 1]; lr: uint8 [N, T, H/4, W/4, 3] (what the runtime sees)."""
    hr, lr = [], []
    for k in range(s.clips):
        clip = scene_clip(s.seed * 100_003 + k, s.frames, s.size, s.size)
        lr.append(downscale_x4(clip))
        hr.append(torch.from_numpy(clip).permute(3, 0, 1, 2) * 2 - 1)
    return torch.stack(hr), torch.from_numpy(np.stack(lr))


def lr_to_tensor(lr_uint8: torch.Tensor) -> torch.Tensor:
    """uint8 [N, T, h, w, 3] -> float [N, 3, T, h, w] in [-1, 1], as the runtime converts frames."""
    return (lr_uint8.permute(0, 4, 1, 2, 3).float() / 255.0 - 0.5) * 2.0


def _schedule(step: int, total: int, warmup: int) -> float:
    if step < warmup:
        return (step + 1) / warmup
    return 0.1 + 0.9 * 0.5 * (1 + np.cos(np.pi * (step - warmup) / max(1, total - warmup)))


def _frames(x):  # [B, C, T, H, W] -> [B*T, C, H, W]
    return x.transpose(1, 2).reshape(-1, x.shape[1], *x.shape[3:])


class Curve:
    """Mean loss per `every` steps, printed as it goes."""

    def __init__(self, name: str, every: int, total: int):
        self.name, self.every, self.total, self.points, self._acc, self._t0 = name, every, total, [], [], time.time()

    def add(self, step: int, loss: float):
        self._acc.append(loss)
        if (step + 1) % self.every == 0 or step + 1 == self.total:
            mean = float(np.mean(self._acc))
            self.points.append([step + 1, round(mean, 6)])
            self._acc = []
            print(f"{self.name} step {step + 1:5d}/{self.total}  loss {mean:.5f}  ({time.time() - self._t0:.0f} s)",
                  flush=True)


def train_autoencoder(s: Settings, hr: torch.Tensor, g: torch.Generator, deadline: float | None):
    enc = Encoder()
    with torch.no_grad():  # the detail channel starts quiet
        enc.detail[-1].weight.mul_(0.1)
    dec = build_network("vae_3d", TRAINED_VAE_3D)
    sf = float(TRAINED_VAE_3D["scaling_factor"])
    init_decoder_as_upsampler(dec, sf, hr[:8, :, 0:3])
    params = list(enc.parameters()) + list(dec.parameters())
    opt = torch.optim.AdamW(params, lr=s.vae_lr, weight_decay=0.0)
    curve = Curve("vae ", s.log_every, s.vae_steps)
    n, _, T, H, W = hr.shape
    c = s.vae_crop
    for step in range(s.vae_steps):
        if deadline and time.time() > deadline:
            print(f"vae: time budget reached at step {step}")
            break
        for grp in opt.param_groups:
            grp["lr"] = s.vae_lr * _schedule(step, s.vae_steps, s.warmup)
        idx = torch.randint(0, n, (s.vae_batch,), generator=g)
        t0 = torch.randint(0, T - 2, (s.vae_batch,), generator=g)
        y0 = torch.randint(0, (H - c) // 4 + 1, (s.vae_batch,), generator=g) * 4
        x0 = torch.randint(0, (W - c) // 4 + 1, (s.vae_batch,), generator=g) * 4
        x = torch.stack([hr[i, :, t:t + 3, y:y + c, xx:xx + c] for i, t, y, xx in zip(idx, t0, y0, x0)])
        z = enc(_frames(x))  # [B*3, 4, c/4, c/4]
        d = z[:, 3]  # the learned channel: mean 0, variance 1 like the picture channels
        moments = d.mean() ** 2 + (d.var() - 1) ** 2
        z = z + s.latent_noise * torch.randn(z.shape, generator=g)
        zv = z.reshape(s.vae_batch, 3, 4, c // 4, c // 4).transpose(1, 2)  # [B, 4, 3, h, w]
        rec = dec(zv / sf)
        loss = F.mse_loss(rec, x) + 0.1 * F.l1_loss(rec, x) + s.moment_weight * moments
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        curve.add(step, loss.item())
    return enc.eval(), dec.eval(), curve.points


def train_unet(s: Settings, z0_all: torch.Tensor, lr_all: torch.Tensor, text: torch.Tensor, g: torch.Generator,
               deadline: float | None, checkpoint=None, stop_after: int | None = None):
    """z0_all [N, 4, T, h, w] latents; lr_all [N, 3, T, h, w] clean low-res in [-1, 1]; text [P, L, C]."""
    unet = build_network("unet", TRAINED_UNET)
    acp = sch.alphas_cumprod(sch.DDIMConfig.from_config(DDIM))
    acp_lr = sch.alphas_cumprod(sch.LowResNoiseConfig.from_config(LOW_RES))
    opt = torch.optim.AdamW(unet.parameters(), lr=s.unet_lr, weight_decay=0.0)
    curve = Curve("unet", s.log_every, s.unet_steps)
    n, _, T = z0_all.shape[:3]
    B, F_ = s.unet_batch, s.unet_frames
    if checkpoint:
        checkpoint(unet, 0)  # the autoencoder alone (the U-Net untrained)
    for step in range(s.unet_steps):
        if deadline and time.time() > deadline:
            print(f"unet: time budget reached at step {step}")
            break
        if stop_after is not None and step == stop_after:
            print(f"unet: stopped after step {step} of the {s.unet_steps}-step schedule")
            break
        for grp in opt.param_groups:
            grp["lr"] = s.unet_lr * _schedule(step, s.unet_steps, s.warmup)
        idx = torch.randint(0, n, (B,), generator=g)
        t0 = torch.randint(0, T - F_ + 1, (B,), generator=g)
        flip = torch.rand(B, generator=g) < 0.5
        z0 = torch.stack([z0_all[i, :, t:t + F_] for i, t in zip(idx, t0)])
        lr = torch.stack([lr_all[i, :, t:t + F_] for i, t in zip(idx, t0)])
        z0 = torch.where(flip[:, None, None, None, None], z0.flip(-1), z0)
        lr = torch.where(flip[:, None, None, None, None], lr.flip(-1), lr)
        t = torch.randint(0, acp.shape[0], (B,), generator=g)
        level = torch.randint(0, MAX_NOISE_LEVEL + 1, (B,), generator=g)
        eps = torch.randn(z0.shape, generator=g)
        a = acp[t].reshape(-1, 1, 1, 1, 1)
        x_t = a.sqrt() * z0 + (1 - a).sqrt() * eps
        v = a.sqrt() * eps - (1 - a).sqrt() * z0
        noisy_lr = sch.add_noise(acp_lr, lr, torch.randn(lr.shape, generator=g), level)
        ehs = text[torch.randint(0, text.shape[0], (B,), generator=g)]
        pred = unet(sample=x_t, timestep=t, low_res=noisy_lr, encoder_hidden_states=ehs, class_labels=level)
        loss = F.mse_loss(pred, v)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
        opt.step()
        curve.add(step, loss.item())
        if checkpoint and (step + 1) % s.checkpoint_every == 0 and step + 1 < s.unet_steps:
            checkpoint(unet, step + 1)
    return unet.eval(), curve.points


def prompt_embeddings(text_dir: Path) -> torch.Tensor:
    """[3, 77, C]: the default prompt, the default negative prompt, the empty prompt."""
    te = TextEncoder.from_folders(text_dir / "text_encoder", text_dir / "tokenizer")
    s = SamplerConfig()
    return torch.cat([te.encode(p) for p in (s.full_prompt, s.negative_prompt, "")])


def train(s: Settings, text_dir: Path, deadline: float | None = None, checkpoint=None,
          stop_after: int | None = None) -> dict:
    """Run both phases; returns {"unet": state_dict, "vae_3d": state_dict, "curves": {...}}."""
    torch.manual_seed(s.seed)
    g = torch.Generator().manual_seed(s.seed)
    hr, lr_u8 = make_data(s)
    text = prompt_embeddings(text_dir)
    enc, dec, vae_curve = train_autoencoder(s, hr, g, deadline)
    with torch.no_grad():  # the diffusion's targets: latents of every training frame, once
        z0 = torch.cat([enc(_frames(hr[i:i + 16])) for i in range(0, len(hr), 16)])
        z0 = z0.reshape(len(hr), s.frames, 4, s.size // 4, s.size // 4).transpose(1, 2).contiguous()
    print(f"latents: mean {z0.mean():.3f} std {z0.std():.3f}", flush=True)
    partial = None
    if checkpoint:
        def partial(unet, step):
            checkpoint({"unet": unet.state_dict(), "vae_3d": dec.state_dict(),
                        "curves": {"vae": vae_curve}}, step)
    unet, unet_curve = train_unet(s, z0, lr_to_tensor(lr_u8), text, g, deadline, partial, stop_after)
    return {"unet": unet.state_dict(), "vae_3d": dec.state_dict(),
            "curves": {"vae": vae_curve, "unet": unet_curve}}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_model(out: Path, result: dict, s: Settings, text_dir: Path, extra: dict) -> dict:
    """The release layout (only the trained parts, plus the text encoder they were trained with)."""
    from safetensors.torch import save_file
    dtype = getattr(torch, s.dtype)
    out.mkdir(parents=True, exist_ok=True)
    files = {"unet": ("unet", "unet_video", TRAINED_UNET), "vae_3d": ("vae", "vae_3d", TRAINED_VAE_3D)}
    for key, (sub, stem, cfg) in files.items():
        (out / sub).mkdir(exist_ok=True)
        (out / sub / f"{stem}_config.json").write_text(json.dumps(cfg, indent=1) + "\n")
        sd = {k: (v.to(dtype) if v.is_floating_point() else v).contiguous() for k, v in result[key].items()}
        save_file(sd, str(out / sub / f"{stem}.safetensors"))
    if (out / "text_encoder").exists():
        shutil.rmtree(out / "text_encoder")
    shutil.copytree(text_dir / "text_encoder", out / "text_encoder")
    hashes = {str(p.relative_to(out)): sha256(p) for p in sorted(out.rglob("*")) if p.is_file()
              and p.name != "TRAINING.json" and p.relative_to(out).parts[0] != "partial"}
    record = {"uavrt": __version__, "settings": asdict(s), "files": hashes,
              "size_bytes": sum((out / f).stat().st_size for f in hashes), **extra,
              "loss_curves": result["curves"]}
    (out / "TRAINING.json").write_text(json.dumps(record, indent=1) + "\n")
    return record


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True, help="folder for the trained weights (release layout)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--minutes", type=float, default=None,
                   help="wall-clock cap; stopping early gives other weights than the full run")
    p.add_argument("--vae-steps", type=int, default=Settings.vae_steps)
    p.add_argument("--unet-steps", type=int, default=Settings.unet_steps)
    p.add_argument("--stop-after", type=int, default=None,
                   help="end the U-Net phase after this many steps of its schedule (the shipped weights: 400)")
    a = p.parse_args(argv)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    s = Settings(seed=a.seed, vae_steps=a.vae_steps, unet_steps=a.unet_steps)
    start = time.time()
    deadline = start + 60 * a.minutes if a.minutes else None
    with tempfile.TemporaryDirectory() as tmp:
        # the demo text encoder/tokenizer (seeded), shipped with the weights it was trained with
        text_dir = write_demo_weights(Path(tmp) / "demo", seed=0, with_raft=False)
        def checkpoint(partial, step):
            write_model(Path(a.out) / "partial", partial, s, text_dir, {"partial_unet_step": step})
        result = train(s, text_dir, deadline, checkpoint, a.stop_after)
        minutes = (time.time() - start) / 60
        extra = {"torch": torch.__version__, "cpu": _cpu_name(), "threads": 1, "minutes": round(minutes, 1),
                 "stopped_early": bool(deadline and time.time() > deadline), "stop_after": a.stop_after}
        record = write_model(Path(a.out), result, s, text_dir, extra)
    print(f"wrote {a.out}: {record['size_bytes'] / 1e6:.2f} MB in {minutes:.1f} min")
    for f, h in record["files"].items():
        print(f"  {h}  {f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
