"""Long videos in bounded memory: temporal windows over a frame stream.

Rule: windows of `W` frames start every `W - O` frames; the last window is shifted back so it
still has W frames. Each window is denoised on its own (clip averaging, flows and propagation do
not cross window boundaries); where two windows overlap, their outputs are cross-faded linearly.
Initial noise is drawn per frame from (seed, frame index), so a frame gets the same noise in
both windows and the two results agree closely before the cross-fade.

`windowed` is the one place windows are scheduled. Work is handed to `submit`, which returns a
handle whose `result()` is the window's `WindowOutput`: computing it at once (the local path), on
a thread (overlapped I/O), on a Ray actor, or loading it from a resume folder are all just other
`submit`s. At most `in_flight` windows are submitted and not yet merged, and input is read one
window ahead (to know which frames the next window's cross-fade needs), so memory holds about
`in_flight + 2` windows of frames whatever the video's length. Frames are yielded in order, each
as soon as no later window can change it.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator

import numpy as np

from .plan import Span, crossfade_weight, window_span


@dataclass(frozen=True)
class WindowOutput:
    """One window's upscaled frames.

    frames: uint8 [T, H, W, 3], final for every frame no other window covers;
    blend: frame index -> float32 [H, W, 3] in [-1, 1] for the frames a cross-fade needs (the
    ones `windowed` asked for in `float_frames`); their uint8 entries in `frames` are not used.
    """

    span: Span
    frames: np.ndarray
    blend: dict = field(default_factory=dict)


class Done:
    """The handle of a window computed already (what a local `submit` returns)."""

    def __init__(self, output: WindowOutput):
        self._output = output

    def result(self) -> WindowOutput:
        return self._output


def windowed(frames: Iterable[np.ndarray], submit: Callable, window: int, overlap: int,
             in_flight: int = 1) -> Iterator[np.ndarray]:
    """Yield the upscaled uint8 frames in order.

    submit(chunk: uint8 [T, h, w, 3], span: Span, float_frames: frozenset[int]) -> handle with
    `.result() -> WindowOutput`.
    """
    it = iter(frames)
    buf: dict = {}  # frame index -> input frame, from the oldest unsubmitted window on
    n_read, eof = 0, False

    def read_to(n: int) -> None:
        nonlocal n_read, eof
        while not eof and n_read < n:
            try:
                buf[n_read] = next(it)
                n_read += 1
            except StopIteration:
                eof = True

    def span_of(k: int) -> Span | None:
        read_to(k * (window - overlap) + window)
        return window_span(k, n_read, eof, window, overlap) if n_read else None

    queue: collections.deque = collections.deque()  # (span, next span, handle), oldest first
    pending: dict = {}  # frame index -> float output kept for the next window's cross-fade
    prev: Span | None = None  # the last window merged
    last: Span | None = None  # the last window submitted
    k, cur = 0, span_of(0)

    def merge(span: Span, nxt: Span | None, out: WindowOutput):
        nonlocal prev
        for f in span:
            i = f - span.start
            if f in pending:  # overlaps an earlier window: linear cross-fade
                w = crossfade_weight(f, prev, span)
                value = (1 - w) * pending.pop(f) + w * out.blend[f]
            else:
                value = out.blend[f] if f in out.blend else out.frames[i]
            if nxt is not None and f >= nxt.start:
                pending[f] = value  # the next window will change it
            else:
                yield value if value.dtype == np.uint8 else _finish(value)
        prev = span

    while cur is not None:
        nxt = span_of(k + 1)
        wanted = frozenset(f for f in cur if (last is not None and f < last.stop)
                           or (nxt is not None and f >= nxt.start))
        chunk = np.stack([buf[f] for f in cur])
        queue.append((cur, nxt, submit(chunk, cur, wanted)))
        last = cur
        keep_from = nxt.start if nxt is not None else n_read
        for f in [f for f in buf if f < keep_from]:
            del buf[f]  # no later window reads it
        while len(queue) >= max(1, in_flight):
            span, after, handle = queue.popleft()
            yield from merge(span, after, handle.result())
        k, cur = k + 1, nxt
    while queue:
        span, after, handle = queue.popleft()
        yield from merge(span, after, handle.result())


def _finish(frame: np.ndarray) -> np.ndarray:
    # [-1, 1] -> uint8 by truncation, exactly as the release converts its output
    return (np.clip(frame / np.float32(2) + np.float32(0.5), 0, 1) * np.float32(255)).astype(np.uint8)
