"""The Upscale-A-Video denoising path for one temporal window, in the release's order.

    run_window: noise_low_res -> for each DDIM step: predict_v (U-Net calls over tiles x clips
    -> merge -> guidance) -> x0 -> propagate x0 at the chosen steps -> DDIM step
    -> decode (3-frame chunks, tiles blended) -> video

Shapes: latents [1, 4, T, h, w]; low-res video [1, 3, T, h, w] in [-1, 1] (latent size = low-res
size for the x4 upscaler); output video [1, 3, T, 4h, 4w] in [-1, 1].
Everything the loop needs per step comes from the window's `WindowPlan` (runtime/plan.py), built
once. Networks are Runners (runtime/backend.py): this module never knows which backend runs them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from ..config import RunConfig
from ..models import schedulers as sch
from .model import Model, get_propagator
from .plan import WindowPlan


@dataclass(frozen=True)
class Conditioning:
    cond: torch.Tensor  # [1, L, C] prompt embeddings
    uncond: torch.Tensor | None  # [1, L, C] negative prompt embeddings (None: no guidance)

    def batch(self, pieces: int) -> torch.Tensor:
        """encoder_hidden_states for `pieces` stacked pieces: [uncond, cond] per piece (release order)."""
        pair = torch.cat([self.uncond, self.cond]) if self.uncond is not None else self.cond
        return pair.repeat(pieces, 1, 1) if pieces > 1 else pair


def run_window(model: Model, cfg: RunConfig, plan: WindowPlan, cond: Conditioning, low_res, latents,
               low_res_noise, flows=None, progress: Callable | None = None,
               propagate: Callable | None = None) -> torch.Tensor:
    """One window: initial noise `latents` -> video [1, 3, T, 4h, 4w] in [-1, 1].

    propagate: the propagation function (default: cfg.propagation.propagator's)."""
    if not plan.parts:
        z = denoise(model, cfg, plan, cond, low_res, latents, low_res_noise, flows, progress, propagate)
        return decode(model, cfg, plan, z, low_res)
    # the release's tiling: an independent run per padded tile, only its core pasted back
    T, h, w = low_res.shape[2:]
    out = torch.zeros((1, 3, T, 4 * h, 4 * w), dtype=torch.float32, device=low_res.device)
    for core, pad, sub in plan.parts:
        ps = (slice(None), slice(None), slice(None), slice(pad.rows.start, pad.rows.stop),
              slice(pad.cols.start, pad.cols.stop))
        f = (flows[0][ps].contiguous(), flows[1][ps].contiguous()) if flows is not None else None
        z = denoise(model, cfg, sub, cond, low_res[ps], latents[ps], low_res_noise[ps], f, progress, propagate)
        v = decode(model, cfg, sub, z, low_res[ps])
        r0, c0 = 4 * (core.rows.start - pad.rows.start), 4 * (core.cols.start - pad.cols.start)
        out[..., 4 * core.rows.start:4 * core.rows.stop, 4 * core.cols.start:4 * core.cols.stop] = \
            v[..., r0:r0 + 4 * core.rows.size, c0:c0 + 4 * core.cols.size]
    return out


def noise_low_res(model: Model, low_res: torch.Tensor, noise: torch.Tensor, level: int) -> torch.Tensor:
    """The U-Net's low-res input: the clean frames noised once at `level` (x4 upscaler training)."""
    return sch.add_noise(model.low_res_acp, low_res, noise, level)


def denoise(model: Model, cfg: RunConfig, plan: WindowPlan, cond: Conditioning, low_res, latents,
            low_res_noise, flows=None, progress: Callable | None = None,
            propagate: Callable | None = None) -> torch.Tensor:
    """DDIM v-prediction from the initial noise `latents` to the final latents."""
    noisy_lr = noise_low_res(model, low_res, low_res_noise, cfg.sampler.noise_level)  # [1, 3, T, h, w]
    acp = model.alphas_cumprod
    propagate = propagate or get_propagator(cfg.propagation.propagator)
    p = cfg.propagation
    latents = latents.float()
    for i, (t, t_prev) in enumerate(plan.timesteps):
        v = predict_v(model, cfg, plan, cond, latents, noisy_lr, i)  # [1, 4, T, h, w]
        x0 = sch.predict_x0(acp, t, latents, v)
        x0_prop = x0
        if i in plan.propagation_steps and flows is not None:
            x0_prop = propagate(x0, flows[0], flows[1], interpolation=p.interpolation, mode=p.mode,
                                fuse_scale=p.fuse_scale, alpha1=p.alpha1, alpha2=p.alpha2)
        # the noise estimate inside the step uses the UNPROPAGATED model output (release order)
        latents = sch.step_from_x0(acp, t, t_prev, latents, v, x0_prop,
                                   set_alpha_to_one=model.ddim.set_alpha_to_one)
        if progress:
            progress("step", i + 1, len(plan.timesteps))
    return latents


def predict_v(model: Model, cfg: RunConfig, plan: WindowPlan, cond: Conditioning, latents, noisy_lr,
              step: int) -> torch.Tensor:
    """Model output v for the whole window at step index `step`: the U-Net outputs of every
    (tile, clip) piece merged with weights summing to 1, then classifier-free guidance (after the
    merge, as the release does)."""
    T, H, W = latents.shape[2:]
    b = 2 if plan.guided else 1
    merged = torch.zeros((b, 4, T, H, W), dtype=torch.float32, device=latents.device)
    for call in plan.calls:
        sl = [_piece_slices(plan, piece) for piece in call.pieces]
        # [b * pieces, C, t, h, w]: each piece repeated b times ([uncond, cond] per piece)
        sample = torch.cat([latents[s].expand(b, -1, -1, -1, -1) for s in sl]).contiguous()
        low_res = torch.cat([noisy_lr[s].expand(b, -1, -1, -1, -1) for s in sl]).contiguous()
        labels = plan.class_labels.repeat(len(sl)) if len(sl) > 1 else plan.class_labels
        out = model.unet(sample=sample, timestep=plan.timestep_tensors[step], low_res=low_res,
                         encoder_hidden_states=cond.batch(len(sl)), class_labels=labels)["noise_pred"]
        for j, ((tile, clip), s) in enumerate(zip(call.pieces, sl)):
            w = plan.clip_weights[clip]
            merged[s] += out[j * b:(j + 1) * b].float() * w * plan.tile_weights[tile]
    if not plan.guided:
        return merged
    uncond, cond_ = merged[0:1], merged[1:2]
    return uncond + cfg.sampler.guidance_scale * (cond_ - uncond)


def _piece_slices(plan: WindowPlan, piece) -> tuple:
    tile, clip = plan.tiles[piece[0]], plan.clips[piece[1]]
    return (slice(None), slice(None), slice(clip.start, clip.stop), slice(tile.rows.start, tile.rows.stop),
            slice(tile.cols.start, tile.cols.stop))


def decode(model: Model, cfg: RunConfig, plan: WindowPlan, latents, low_res) -> torch.Tensor:
    """Latents -> video in [-1, 1]: chunks of frames (no overlap; the release uses 3), each clamped.

    The decoder is conditioned on the CLEAN low-res frames (vae_video); GroupNorm statistics
    span the chunk, so the chunk length is part of the result.
    """
    z = latents / model.scaling_factor
    T, H, W = z.shape[2:]
    takes = set(model.vae.spec.input_names)
    out = torch.empty((1, 3, T, 4 * H, 4 * W), dtype=torch.float32, device=z.device)
    for c in plan.decode_chunks:
        fs = slice(c.start, c.stop)
        acc = torch.zeros((1, 3, c.size, 4 * H, 4 * W), dtype=torch.float32, device=z.device)
        for r, q, w in plan.decode_tiles:
            rs, qs = slice(r.start, r.stop), slice(q.start, q.stop)
            inputs = {"latents": z[:, :, fs, rs, qs].contiguous(),
                      "low_res": low_res[:, :, fs, rs, qs].contiguous(), "w_lr": plan.w_lr}
            video = model.vae(**{k: v for k, v in inputs.items() if k in takes})["video"]
            acc[:, :, :, 4 * r.start:4 * r.stop, 4 * q.start:4 * q.stop] += video * w
        out[:, :, fs] = acc.clamp(-1, 1)
    return out
