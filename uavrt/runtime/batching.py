"""Batched U-Net calls: several clips (and tiles) of one denoising step in one call.

Planning (pure): which (tile, clip) units go into which U-Net call, how many clips one call
may hold under a memory budget. The calls themselves are made by pipeline.predict_v.

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


def clips_per_call(clips: int | None, budget_bytes: int | None, n_units: int, *, shape: tuple,
                   guided: bool, dtype_bytes: int = 4) -> int:
    """Clips per U-Net call: the override `clips`, else the most whose estimated activations
    (largest piece `shape` = (frames, h, w)) fit `budget_bytes` (at least 1: the release's own
    call size always runs; no budget: 1), never more than there are units in a step."""
    if clips is not None:
        return max(1, min(clips, n_units))
    if budget_bytes is None:
        return 1
    per_clip = unet_sample_bytes(*shape, dtype_bytes) * (2 if guided else 1)
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

