"""Batched U-Net calls: several clips (and tiles) of one denoising step in one call.

Planning (pure): which (tile, clip) units go into which U-Net call, how many clips one call
may hold under a memory budget; and `batched_unet`, the call loop itself.

Why stacking is sound: every op of the U-Net acts on each batch element on its own (GroupNorm
statistics are per sample, temporal attention runs inside a sample's frames, spatial attention
inside a frame, text cross-attention per sample), so the batch axis only adds independent rows.
With guidance each clip contributes its [uncond, cond] pair and the pairs are concatenated, so
the release's pair layout is kept inside the batch. The float results are NOT bit-identical:
the GEMM/convolution libraries choose their blocking by problem size, so a larger batch sums in
another order (CPU fp32, oneDNN/MKL: 4e-6 max abs on one tiny-U-Net call; on GPUs the GEMM
heuristics do the same). The difference is float reassociation only; the golden pipeline
cases pass batched and unbatched, and agree to 5e-5 (tests/runtime/test_batching.py).
"""

from __future__ import annotations

# Peak activation bytes of one U-Net sample per latent element (T*h*w), in units of the release
# U-Net's first block width (320 channels) and the activation dtype: ~40 live [C0, T, h, w]-sized
# tensors at the peak (skip connections of every level, ResNet/attention temporaries at full
# resolution). An ESTIMATE with margin, not measured on a GPU in this project (smaller demo
# models are over-estimated, which only makes batches smaller); `--unet-batch N` overrides it.
ACTIVATIONS_PER_ELEMENT = 40
RELEASE_BASE_CHANNELS = 320
# Share of the device's free memory one U-Net call may use when no budget is given: the rest
# is for the other networks, the window's tensors and the allocator's slack.
FREE_MEMORY_SHARE = {"cuda": 0.5, "cpu": 0.25}


def unet_sample_bytes(frames: int, h: int, w: int, dtype_bytes: int) -> int:
    """Estimated peak activation bytes of ONE U-Net batch element (one guidance branch)."""
    return ACTIVATIONS_PER_ELEMENT * RELEASE_BASE_CHANNELS * frames * h * w * dtype_bytes


def device_budget_bytes(device) -> int:
    """The default budget: a share of the device's free memory now (queried once per window)."""
    import torch
    device = torch.device(device)
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
    else:
        try:
            import psutil
            free = psutil.virtual_memory().available
        except ImportError:  # psutil is a bench extra; fall back to the kernel's count
            import os
            free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return int(free * FREE_MEMORY_SHARE.get(device.type, 0.25))


def clips_per_call(clips: int | None, budget_bytes: int, n_units: int, *, frames: int, h: int, w: int,
                   guided: bool, dtype_bytes: int) -> int:
    """Clips per U-Net call: the override `clips`, else the most whose estimated activations fit
    `budget_bytes` (at least 1: the release's own call size is always allowed), never more than
    there are units in a step."""
    if clips is not None:
        return max(1, min(clips, n_units))
    per_clip = unet_sample_bytes(frames, h, w, dtype_bytes) * (2 if guided else 1)
    return max(1, min(n_units, budget_bytes // per_clip))


def group_units(shapes: list, max_clips: int) -> list:
    """Indices of the units (in plan order) of each U-Net call: runs of consecutive units with the
    same input shape, at most `max_clips` per call. Keeping plan order lets the caller merge the
    outputs in exactly the unbatched order (the merge sums are then identical)."""
    if max_clips < 1:
        raise ValueError(f"max_clips must be >= 1, got {max_clips}")
    groups: list = []
    for i, shape in enumerate(shapes):
        if groups and len(groups[-1]) < max_clips and shapes[groups[-1][0]] == shape:
            groups[-1].append(i)
        else:
            groups.append([i])
    return groups


def batched_unet(unet, samples: list, low_res: list, timestep, level: int, cond, uncond, max_clips: int,
                 device) -> list:
    """U-Net outputs of several units, `max_clips` units per call, in the order given.

    samples / low_res: per unit [1, 4, T, h, w] / [1, 3, T, h, w]; cond / uncond: [1, L, C]
    prompt embeddings (uncond None: no guidance). Returns per unit its [b, 4, T, h, w] output
    (b = 2 with guidance: [uncond, cond], the release's pair), each a tensor of its own (a
    runner that owns its outputs is copied out before the next call)."""
    import torch

    pair = [uncond, cond] if uncond is not None else [cond]
    b = len(pair)
    t = torch.tensor(int(timestep), dtype=torch.int64, device=device)
    outs: list = []
    for group in group_units([tuple(s.shape) for s in samples], max_clips):
        n = len(group) * b
        out = unet(
            sample=torch.cat([samples[i].expand(b, -1, -1, -1, -1) for i in group]),
            timestep=t,
            low_res=torch.cat([low_res[i].expand(b, -1, -1, -1, -1) for i in group]),
            encoder_hidden_states=torch.cat(pair * len(group)),
            class_labels=torch.full((n,), int(level), dtype=torch.int64, device=device),
        )["noise_pred"]
        if getattr(unet, "owns_outputs", False):
            out = out.clone()
        outs.extend(out[j * b:(j + 1) * b] for j in range(len(group)))
    return outs
