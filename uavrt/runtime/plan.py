"""Pure planning: temporal windows, 8-frame clips, spatial tiles and their blend weights.

No tensors here: plain integers and floats, so every rule is testable on its own and the
pipeline only follows the plan.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import ConfigError


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
    nominal = index * (window - overlap)
    if not eof and frames_read < nominal + window:
        raise ValueError("window_span needs the frames of the whole window or the end of stream")
    n = frames_read if eof else nominal + window
    start = max(0, min(nominal, n - window))
    stop = min(nominal + window, n)
    if index > 0:
        prev = window_span(index - 1, frames_read, eof, window, overlap)
        if prev is None or prev.stop >= n:
            return None
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
