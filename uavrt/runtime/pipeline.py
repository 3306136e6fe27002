"""The Upscale-A-Video denoising path for one temporal window, in the release's order.

    noise_low_res -> for each DDIM step: predict_v (clips x tiles -> U-Net -> merge -> guidance)
    -> x0 -> propagate x0 at the chosen steps -> DDIM step -> decode (3-frame chunks) -> colour fix

Shapes: latents [1, 4, T, h, w]; low-res video [1, 3, T, h, w] in [-1, 1] (latent size = low-res
size for the x4 upscaler); output video [1, 3, T, 4h, 4w] in [-1, 1].
Networks are Runners (uavrt.runtime.backend): this module never knows which backend runs them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from ..config import RunConfig
from ..models import schedulers as sch
from .batching import batched_unet, clips_per_call, device_budget_bytes
from .plan import Span, clip_spans, clip_weights, plan_tiles, tile_spans, tile_weights


@dataclass(frozen=True)
class Networks:
    """The immutable model: runners and constants, loaded once, shared by every run."""

    unet: object  # Runner: sample, timestep, low_res, encoder_hidden_states, class_labels
    vae: object  # Runner: latents (+ low_res, w_lr for vae_video) -> video
    raft: object | None  # Runner: image1, image2 -> flow_low, flow_up (None: no propagation)
    propagate: Callable  # (x0, flows_forward, flows_backward, **PropagationConfig) -> x0
    ddim: object  # schedulers.DDIMConfig
    low_res_acp: torch.Tensor  # alphas_cumprod of the low-res noise schedule
    device: torch.device
    scaling_factor: float = 0.08333


@dataclass(frozen=True)
class Conditioning:
    cond: torch.Tensor  # [1, L, C] prompt embeddings
    uncond: torch.Tensor | None  # [1, L, C] negative prompt embeddings (None: no guidance)


# --- phases --------------------------------------------------------------------------------------

def noise_low_res(nets: Networks, low_res: torch.Tensor, noise: torch.Tensor, level: int) -> torch.Tensor:
    """The U-Net's low-res input: the clean frames noised once at `level` (x4 upscaler training)."""
    return sch.add_noise(nets.low_res_acp, low_res, noise, level)


def predict_v(nets: Networks, cfg: RunConfig, cond: Conditioning, latents, noisy_lr, t, tiles: list,
              trace: dict | None = None, max_clips: int = 1) -> torch.Tensor:
    """Model output v for the whole window: clips x tiles merged with weights summing to 1, then
    classifier-free guidance (after the merge, as the release does).

    The (tile, clip) units go to the U-Net `max_clips` at a time (runtime/batching.py); their
    outputs are merged in the same order either way, so batching does not change the sums."""
    T, H, W = latents.shape[2:]
    clips = clip_spans(T, cfg.clips.length, cfg.clips.overlap)
    cw = clip_weights(clips, T, cfg.clips.merge)
    row_w, col_w = _tile_axis_weights(tiles, H, W)
    guided = cond.uncond is not None
    units = [(tile, k, clip) for tile in tiles for k, clip in enumerate(clips)]
    sl = [(slice(c.start, c.stop), slice(tl.rows.start, tl.rows.stop), slice(tl.cols.start, tl.cols.stop))
          for tl, _, c in units]
    outs = batched_unet(nets.unet, [latents[:, :, f, r, c] for f, r, c in sl],
                        [noisy_lr[:, :, f, r, c] for f, r, c in sl], t, cfg.sampler.noise_level,
                        cond.cond, cond.uncond, max_clips, nets.device)
    merged = torch.zeros((2 if guided else 1, 4, T, H, W), dtype=torch.float32, device=latents.device)
    for (tile, k, _), (fs, rs, cs), out in zip(units, sl, outs):
        tw = (row_w[tile.rows][:, None] * col_w[tile.cols][None, :]).to(latents.device)  # [th, tw]
        if trace is not None and len(tiles) == 1:
            trace.setdefault("unet_calls", []).append(out)
        w = torch.tensor(cw[k], dtype=torch.float32, device=latents.device)[None, None, :, None, None]
        merged[:, :, fs, rs, cs] += out.float() * w * tw
    if not guided:
        return merged
    uncond, cond_ = merged[0:1], merged[1:2]
    return uncond + cfg.sampler.guidance_scale * (cond_ - uncond)


def unet_clips_per_call(nets: Networks, cfg: RunConfig, n_units: int, clip_shape, guided: bool) -> int:
    """Clips per U-Net call for this window (override, else the memory budget)."""
    b = cfg.unet_batch
    if b.clips is not None or n_units <= 1:
        return clips_per_call(b.clips, 0, n_units, frames=1, h=1, w=1, guided=guided, dtype_bytes=4)
    budget = b.budget_mb * 2**20 if b.budget_mb is not None else device_budget_bytes(nets.device)
    dtype_bytes = 2 if getattr(nets.unet, "precision", "fp32") == "fp16" else 4
    T, h, w = clip_shape
    return clips_per_call(None, budget, n_units, frames=T, h=h, w=w, guided=guided, dtype_bytes=dtype_bytes)


def _tile_axis_weights(tiles: list, H: int, W: int):
    """Per-axis blend weights as dense vectors keyed by span (rows and cols planned separately)."""
    rows = sorted({(t.rows.start, t.rows.stop) for t in tiles})
    cols = sorted({(t.cols.start, t.cols.stop) for t in tiles})
    return _AxisWeights([Span(*r) for r in rows], H), _AxisWeights([Span(*c) for c in cols], W)


class _AxisWeights:
    def __init__(self, spans, size):
        self._w = {(s.start, s.stop): torch.tensor(w, dtype=torch.float32)
                   for s, w in zip(spans, tile_weights(spans, size))}

    def __getitem__(self, span: Span) -> torch.Tensor:
        return self._w[(span.start, span.stop)]


def denoise(nets: Networks, cfg: RunConfig, cond: Conditioning, low_res, latents, low_res_noise,
            flows=None, *, tile: int | None = None, tile_overlap: int = 0, trace: dict | None = None,
            progress: Callable | None = None) -> torch.Tensor:
    """DDIM v-prediction from the initial noise `latents` to the final latents."""
    s = cfg.sampler
    noisy_lr = noise_low_res(nets, low_res, low_res_noise, s.noise_level)  # [1, 3, T, h, w]
    H, W = latents.shape[-2:]
    tiles = plan_tiles(H, W, tile, tile_overlap)
    acp = sch.alphas_cumprod(nets.ddim).to(latents.device)
    timesteps = sch.ddim_timesteps(nets.ddim, s.steps)
    latents = latents.float()
    T = latents.shape[2]
    n_clips = len(clip_spans(T, cfg.clips.length, cfg.clips.overlap))
    biggest = max(tiles, key=lambda tl: (tl.rows.stop - tl.rows.start) * (tl.cols.stop - tl.cols.start))
    max_clips = unet_clips_per_call(nets, cfg, n_clips * len(tiles),
                                    (min(T, cfg.clips.length), biggest.rows.stop - biggest.rows.start,
                                     biggest.cols.stop - biggest.cols.start), cond.uncond is not None)
    for i, t in enumerate(timesteps.tolist()):
        t_prev = sch.prev_timestep(nets.ddim, t, s.steps)
        step_trace = {} if trace is not None else None
        v = predict_v(nets, cfg, cond, latents, noisy_lr, t, tiles, step_trace, max_clips)  # [1, 4, T, h, w]
        x0 = sch.predict_x0(acp, t, latents, v)
        x0_prop = x0
        if i in s.propagation_steps and flows is not None:
            p = cfg.propagation
            x0_prop = nets.propagate(x0, flows[0], flows[1], interpolation=p.interpolation, mode=p.mode,
                                     fuse_scale=p.fuse_scale, alpha1=p.alpha1, alpha2=p.alpha2)
        # the noise estimate inside the step uses the UNPROPAGATED model output (release order)
        new = sch.step_from_x0(acp, t, t_prev, latents, v, x0_prop)
        if trace is not None:
            trace[f"step{i}"] = dict(step_trace, timestep=t, latents_in=latents, noise_pred_guided=v, x0=x0,
                                     latents_out=new, **({"x0_propagated": x0_prop} if x0_prop is not x0 else {}))
        latents = new
        if progress:
            progress("step", i + 1, len(timesteps))
    return latents


def decode(nets: Networks, cfg: RunConfig, latents, low_res, *, tile: int | None = None,
           tile_overlap: int = 0) -> torch.Tensor:
    """Latents -> video in [-1, 1]: chunks of frames (no overlap; the release uses 3), each clamped.

    The decoder is conditioned on the CLEAN low-res frames (vae_video); GroupNorm statistics
    span the chunk, so the chunk length is part of the result.
    """
    z = latents / nets.scaling_factor
    T, H, W = z.shape[2:]
    n = cfg.decode.chunk_frames
    chunks = [Span(0, T)] if T <= n else [Span(a, min(a + n, T)) for a in range(0, T, n)]
    takes = set(nets.vae.spec.input_names)
    out = torch.empty((1, 3, T, 4 * H, 4 * W), dtype=torch.float32, device=z.device)
    rows = tile_spans(H, tile, tile_overlap) if tile else [Span(0, H)]
    cols = tile_spans(W, tile, tile_overlap) if tile else [Span(0, W)]
    rw, cw = tile_weights(rows, H), tile_weights(cols, W)
    for c in chunks:
        fs = slice(c.start, c.stop)
        acc = torch.zeros((1, 3, c.size, 4 * H, 4 * W), dtype=torch.float32, device=z.device)
        for r, wr in zip(rows, rw):
            for q, wq in zip(cols, cw):
                rs, qs = slice(r.start, r.stop), slice(q.start, q.stop)
                inputs = {"latents": z[:, :, fs, rs, qs].contiguous(),
                          "low_res": low_res[:, :, fs, rs, qs].contiguous(),
                          "w_lr": torch.tensor(cfg.decode.w_lr, dtype=torch.float32, device=z.device)}
                video = nets.vae(**{k: v for k, v in inputs.items() if k in takes})["video"]
                w = _upsampled_weight(wr, wq, z.device)
                acc[:, :, :, 4 * r.start:4 * r.stop, 4 * q.start:4 * q.stop] += video * w
        out[:, :, fs] = acc.clamp(-1, 1)
    return out


def _upsampled_weight(wr, wq, device):
    w = torch.tensor(wr, device=device)[:, None] * torch.tensor(wq, device=device)[None, :]
    return w.repeat_interleave(4, 0).repeat_interleave(4, 1)


def to_uint8(video: torch.Tensor) -> torch.Tensor:
    """[1, 3, T, H, W] in [-1, 1] -> [T, H, W, 3] uint8, truncating as the release does."""
    x = ((video[0] / 2 + 0.5).clamp(0, 1) * 255).to(torch.uint8)
    return x.permute(1, 2, 3, 0).contiguous()
