"""Pure planning: temporal windows, 8-frame clips, spatial tiles and their blend weights.

The rules are plain functions of integers and floats, testable on their own; `plan_window`
gathers them into one `WindowPlan` per window (its weights as tensors on the run's device), so the
pipeline only follows the plan and recomputes nothing per step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..errors import ConfigError
from .batching import clips_per_call, group_units


@dataclass(frozen=True)
class Span:
    start: int
    stop: int

    @property
    def size(self) -> int:
        return self.stop - self.start

    def __iter__(self):
        return iter(range(self.start, self.stop))


# --- clips inside a window ---------------------------------------------------------------------

def clip_spans(num_frames: int, length: int = 8, overlap: int = 2) -> list:
    """The release's clip schedule.

    Clips start every `length - overlap` frames; a clip that would run past the end is shifted
    back to end at `num_frames`. The release keeps such shifted duplicates (T=13 -> [0,8),
    [5,13), [5,13)): they change the running average, so parity needs them.
    """
    if num_frames <= length:
        return [Span(0, num_frames)]
    stride = length - overlap
    spans = []
    for start in range(0, num_frames, stride):
        start = min(start, num_frames - length)
        spans.append(Span(start, start + length))
    return spans


def clip_weights(spans: list, num_frames: int, merge: str = "release") -> list:
    """Per clip, per frame of the clip: the weight of that clip's output in the merged frame.

    "release": the first clip covering a frame is kept and each later one is averaged in as
    0.5*old + 0.5*new, i.e. with n covering clips the k-th (k >= 2) weighs 0.5**(n-k+1) and the
    first 0.5**(n-1). "mean": duplicate clips dropped, every covering clip weighs the same.
    Weights of every frame sum to 1.
    """
    if merge == "mean":
        seen, uniq = set(), []
        for s in spans:
            key = (s.start, s.stop)
            uniq.append(key not in seen)
            seen.add(key)
    else:
        uniq = [True] * len(spans)
    covering = [[k for k, s in enumerate(spans) if uniq[k] and s.start <= f < s.stop] for f in range(num_frames)]
    for f, cov in enumerate(covering):
        if not cov:
            raise ConfigError("clips", [(s.start, s.stop) for s in spans], f"spans covering frame {f}")
    weights = [[0.0] * s.size for s in spans]
    for f, cov in enumerate(covering):
        n = len(cov)
        for rank, k in enumerate(cov):
            if merge == "mean":
                w = 1.0 / n
            else:
                w = 0.5 ** (n - 1) if rank == 0 else 0.5 ** (n - rank)
            weights[k][f - spans[k].start] = w
    return weights


# --- temporal windows over a stream --------------------------------------------------------------

def window_span(index: int, frames_read: int, eof: bool, window: int, overlap: int) -> Span | None:
    """Span of window `index` given how many frames are known.

    Windows start every `window - overlap` frames; the last one is shifted back so it still
    holds `window` frames (a short tail would give the temporal layers too little context).
    Call with frames_read >= nominal start + window, or eof=True. Returns None when the stream
    is already covered.
    """
    stride = window - overlap
    nominal = index * stride
    if not eof and frames_read < nominal + window:
        raise ValueError("window_span needs the frames of the whole window or the end of stream")
    n = frames_read if eof else nominal + window
    if index > 0 and (index - 1) * stride + window >= n:
        return None  # the previous window already reaches the end
    start = max(0, min(nominal, n - window))
    stop = min(nominal + window, n)
    return Span(start, stop)


def window_spans(num_frames: int, window: int, overlap: int) -> list:
    spans, k = [], 0
    while (s := window_span(k, num_frames, True, window, overlap)) is not None:
        spans.append(s)
        k += 1
    return spans


def crossfade_weight(frame: int, prev: Span, cur: Span) -> float:
    """Weight of the NEW window's output at `frame` where windows `prev` and `cur` overlap.

    Linear ramp over the overlap so no frame jumps between two independent denoising runs.
    """
    lo, hi = cur.start, prev.stop
    if frame < lo:
        return 0.0
    if frame >= hi:
        return 1.0
    return (frame - lo + 1) / (hi - lo + 1)


# --- spatial tiles -------------------------------------------------------------------------------

def tile_spans(size: int, tile: int, overlap: int) -> list:
    """Tiles along one axis, all of the same length min(tile, size), clamped inside the frame."""
    if tile >= size:
        return [Span(0, size)]
    stride = tile - overlap
    if stride <= 0:
        raise ConfigError("tile_overlap", overlap, f"less than the tile size {tile}")
    count = math.ceil((size - tile) / stride) + 1
    return [Span(min(i * stride, size - tile), min(i * stride, size - tile) + tile) for i in range(count)]


def tile_weights(spans: list, size: int) -> list:
    """Per tile, per position: blend weights that sum to exactly 1 at every position.

    Each tile gets a trapezoid ramp (1 in its interior, falling linearly towards its edges that
    are inside the frame), then every position is normalised by the sum over tiles.
    """
    raw = []
    for i, s in enumerate(spans):
        w = []
        for p in range(s.start, s.stop):
            left = p - s.start + 1 if s.start > 0 else math.inf
            right = s.stop - p if s.stop < size else math.inf
            w.append(float(min(left, right, s.size)))
        raw.append(w)
    total = [0.0] * size
    for s, w in zip(spans, raw):
        for p, v in zip(range(s.start, s.stop), w):
            total[p] += v
    return [[v / total[p] for p, v in zip(range(s.start, s.stop), w)] for s, w in zip(spans, raw)]


@dataclass(frozen=True)
class Tile:
    rows: Span
    cols: Span


def plan_tiles(height: int, width: int, tile: int | None, overlap: int) -> list:
    """2-D tiles (row-major). tile None -> one tile covering the frame."""
    if tile is None:
        return [Tile(Span(0, height), Span(0, width))]
    return [Tile(r, c) for r in tile_spans(height, tile, overlap) for c in tile_spans(width, tile, overlap)]


def release_tiles(height: int, width: int, tile: int, overlap: int) -> list:
    """The release's independent tiles: (core, padded) pairs.

    Core tiles are a plain grid of `tile` (edge tiles smaller); each runs padded by `overlap` on
    every side that is inside the frame, and only its core is pasted back (no blending).
    """
    out = []
    for y in range(math.ceil(height / tile)):
        for x in range(math.ceil(width / tile)):
            core = Tile(Span(y * tile, min((y + 1) * tile, height)), Span(x * tile, min((x + 1) * tile, width)))
            pad = Tile(Span(max(core.rows.start - overlap, 0), min(core.rows.stop + overlap, height)),
                       Span(max(core.cols.start - overlap, 0), min(core.cols.stop + overlap, width)))
            out.append((core, pad))
    return out


# --- one window, planned once ----------------------------------------------------------------------

def choose_tile(tiles, height: int, width: int) -> int | None:
    """Tile size for a frame (TileConfig `tiles`): the explicit size when the frame is larger,
    else the release's automatic 256 from 384x384 low-res pixels up; None = untiled."""
    if tiles.size is not None:
        return tiles.size if (tiles.size < height or tiles.size < width) else None
    return tiles.auto_size if height * width >= tiles.auto_area else None


@dataclass(frozen=True)
class UNetCall:
    """One U-Net call: the (tile, clip) pieces stacked along the batch axis."""

    pieces: tuple  # of (tile index, clip index); every piece has the same shape


@dataclass(frozen=True)
class WindowPlan:
    """Everything the pipeline needs to run one window, computed once per window.

    Weight tensors live on the run's device, so the step loop makes no host-to-device copies.
    `parts` is non-empty only for the release's independent tiles: one sub-plan per padded tile.
    """

    frames: int
    height: int  # latent (= low-res) size
    width: int
    guided: bool
    clips: tuple  # of Span
    clip_weights: tuple  # per clip: float32 [1, 1, len, 1, 1] on device (summing to 1 per frame)
    tiles: tuple  # of Tile (one covering the frame when untiled)
    tile_weights: tuple  # per tile: float32 [th, tw] on device (summing to 1 per pixel)
    calls: tuple  # of UNetCall, in the order the release visits tiles then clips
    timesteps: tuple  # of (t, t_prev) Python ints
    timestep_tensors: tuple  # per step: int64 0-d on device
    class_labels: torch.Tensor  # int64 [batch of one piece] on device: the noise level
    propagation_steps: frozenset
    decode_chunks: tuple  # of Span (frames decoded together: GroupNorm spans a chunk)
    decode_tiles: tuple  # of (rows Span, cols Span, float32 [4th, 4tw] weight on device)
    w_lr: torch.Tensor  # float32 0-d on device: vae_video's low-res condition weight
    parts: tuple = ()  # release tiling: (core Tile, padded Tile, WindowPlan of the padded tile)


def plan_window(cfg, ddim, frames: int, height: int, width: int, device, *, tile: int | None = None,
                tile_mode: str | None = None, budget_bytes: int | None = None) -> WindowPlan:
    """The plan of one window of `frames` low-res frames of height x width (RunConfig `cfg`,
    DDIMConfig `ddim`). `tile` defaults to choose_tile(cfg.tiles, ...). `budget_bytes`: the
    U-Net activation budget used when cfg.unet_batch is None (the caller measures the device)."""
    from ..models import schedulers as sch
    device = torch.device(device)
    if tile is None and tile_mode is None:
        tile = choose_tile(cfg.tiles, height, width)
    mode = tile_mode or cfg.tiles.mode
    overlap = min(cfg.tiles.overlap, (tile or 0) // 2)
    if tile is not None and mode == "release":
        parts = tuple((core, pad, plan_window(cfg, ddim, frames, pad.rows.size, pad.cols.size, device,
                                              tile_mode="none", budget_bytes=budget_bytes))
                      for core, pad in release_tiles(height, width, tile, cfg.tiles.overlap))
        base = plan_window(cfg, ddim, frames, height, width, device, tile_mode="none", budget_bytes=budget_bytes)
        return _replace(base, parts=parts)
    if mode == "none":
        tile = None

    s = cfg.sampler
    clips = clip_spans(frames, cfg.clips.length, cfg.clips.overlap)
    cw = tuple(torch.tensor(w, dtype=torch.float32, device=device)[None, None, :, None, None]
               for w in clip_weights(clips, frames, cfg.clips.merge))
    tiles = plan_tiles(height, width, tile, overlap)
    rows = sorted({(t.rows.start, t.rows.stop) for t in tiles})
    cols = sorted({(t.cols.start, t.cols.stop) for t in tiles})
    rw = dict(zip(rows, tile_weights([Span(*r) for r in rows], height)))
    qw = dict(zip(cols, tile_weights([Span(*c) for c in cols], width)))
    tw = tuple((torch.tensor(rw[(t.rows.start, t.rows.stop)], dtype=torch.float32)[:, None]
                * torch.tensor(qw[(t.cols.start, t.cols.stop)], dtype=torch.float32)[None, :]).to(device)
               for t in tiles)
    pieces = [(i, k) for i in range(len(tiles)) for k in range(len(clips))]
    # pieces of one call must share a shape (they are concatenated); plan order is kept, so the
    # merge sums run in the same order whatever the batch (runtime/batching.py)
    shapes = [(clips[k].stop - clips[k].start, tiles[i].rows.stop - tiles[i].rows.start,
               tiles[i].cols.stop - tiles[i].cols.start) for i, k in pieces]
    batch = clips_per_call(cfg.unet_batch, budget_bytes, len(pieces), shape=max(shapes), guided=cfg.sampler.guided,
                           dtype_bytes=4)
    calls = tuple(UNetCall(tuple(pieces[j] for j in group)) for group in group_units(shapes, batch))

    ts = [int(t) for t in sch.ddim_timesteps(ddim, s.steps)]
    steps = tuple((t, int(sch.prev_timestep(ddim, t, s.steps))) for t in ts)
    guided = s.guided
    labels = torch.full((2 if guided else 1,), int(s.noise_level), dtype=torch.int64).to(device)

    n = cfg.decode.chunk_frames
    chunks = (Span(0, frames),) if frames <= n else tuple(Span(a, min(a + n, frames)) for a in range(0, frames, n))
    drows = tile_spans(height, tile, overlap) if tile else [Span(0, height)]
    dcols = tile_spans(width, tile, overlap) if tile else [Span(0, width)]
    dtiles = tuple((r, q, _upsampled(wr, wq, device))
                   for r, wr in zip(drows, tile_weights(drows, height))
                   for q, wq in zip(dcols, tile_weights(dcols, width)))
    return WindowPlan(
        frames=frames, height=height, width=width, guided=guided, clips=tuple(clips), clip_weights=cw,
        tiles=tuple(tiles), tile_weights=tw, calls=calls, timesteps=steps,
        timestep_tensors=tuple(torch.tensor(t, dtype=torch.int64).to(device) for t, _ in steps),
        class_labels=labels, propagation_steps=frozenset(s.propagation_steps), decode_chunks=chunks,
        decode_tiles=dtiles, w_lr=torch.tensor(cfg.decode.w_lr, dtype=torch.float32).to(device))


def _upsampled(wr, wq, device) -> torch.Tensor:
    # decode tiles blend in output pixels: each latent weight covers a 4x4 block
    w = torch.tensor(wr, dtype=torch.float32)[:, None] * torch.tensor(wq, dtype=torch.float32)[None, :]
    return w.repeat_interleave(4, 0).repeat_interleave(4, 1).to(device)


def _replace(plan: WindowPlan, **changes) -> WindowPlan:
    import dataclasses
    return dataclasses.replace(plan, **changes)
