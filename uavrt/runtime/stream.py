"""Long videos in bounded memory: temporal windows over a frame stream.

Rule: windows of `W` frames start every `W - O` frames; the last window is shifted back so it
still has W frames. Each window is denoised on its own (clip averaging, flows and propagation do
not cross window boundaries); where two windows overlap, their outputs are cross-faded linearly.
Initial noise is drawn per frame from (seed, frame index), so a frame gets the same noise in
both windows and the two results agree closely before the cross-fade. Memory holds at most one
window of input frames and one window of output frames, whatever the video's length.
"""

from __future__ import annotations

from typing import Callable, Iterable, Iterator

import numpy as np

from .plan import Span, crossfade_weight, window_span


def windowed(frames: Iterable[np.ndarray], process: Callable, window: int, overlap: int) -> Iterator[np.ndarray]:
    """Yield process()'s output frames in order.

    process(frames: list[np.ndarray], span: Span) -> list of float32 [H, W, 3] frames in [-1, 1].
    """
    it = iter(frames)
    buf: dict = {}  # frame index -> input frame (current window only)
    n_read, eof = 0, False
    pending: dict = {}  # frame index -> output not yet emitted (previous window's tail)
    prev: Span | None = None
    emitted = 0
    k = 0
    while True:
        nominal_end = k * (window - overlap) + window
        while not eof and n_read < nominal_end:
            try:
                buf[n_read] = next(it)
                n_read += 1
            except StopIteration:
                eof = True
        if n_read == 0:
            return
        span = window_span(k, n_read, eof, window, overlap) if (prev is None or prev.stop < n_read) else None
        if span is None:
            break
        for f in [f for f in buf if f < span.start]:
            del buf[f]  # no later window starts before this one
        # everything before this window's start is final: blend is done, emit it
        for f in range(emitted, span.start):
            yield _finish(pending.pop(f))
        emitted = max(emitted, span.start)
        outs = process([buf[f] for f in span], span)
        for f, out in zip(span, outs):
            if f in pending:
                w = crossfade_weight(f, prev, span)
                pending[f] = (1 - w) * pending[f] + w * out
            else:
                pending[f] = out
        prev = span
        k += 1
        if eof and span.stop >= n_read:
            break
    for f in range(emitted, prev.stop if prev else 0):
        yield _finish(pending.pop(f))


def _finish(frame: np.ndarray) -> np.ndarray:
    # [-1, 1] -> uint8 by truncation, exactly as the release converts its output
    return (np.clip(frame / np.float32(2) + np.float32(0.5), 0, 1) * np.float32(255)).astype(np.uint8)
