"""Long videos in bounded memory: temporal windows over a frame stream.

Rule: windows of `W` frames start every `W - O` frames; the last window is shifted back so it
still has W frames. Each window is denoised on its own (clip averaging, flows and propagation do
not cross window boundaries); where two windows overlap, their outputs are cross-faded linearly.
Initial noise is drawn per frame from (seed, frame index), so a frame gets the same noise in
both windows and the two results agree closely before the cross-fade.

`windowed` is the one place windows are scheduled. Work is handed to `submit`, which returns a
handle whose `result()` is the window's `WindowOutput`: computing it at once (the local path), on
a thread (overlapped I/O), on a Ray actor, or loading it from a resume folder are all just other
`submit`s. At most `in_flight` windows are submitted and not yet merged, and input is read at most
one window ahead (to know which frames the next window's cross-fade needs; `eager` trades that
read-ahead for float copies), so memory holds about `in_flight + 2` windows of frames whatever
the video's length. Frames are yielded in order, each as soon as no later window can change it.
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
             in_flight: int = 1, first_index: int = 0, eager: bool = False) -> Iterator[np.ndarray]:
    """Yield the upscaled uint8 frames in order.

    submit(chunk: uint8 [T, h, w, 3], span: Span, float_frames: frozenset[int]) -> handle with
    `.result() -> WindowOutput`. Frame indices (spans, float_frames, WindowOutput.blend keys) are
    absolute: the first frame of `frames` is frame `first_index` of its video (a segment of a
    longer video keeps the indices, hence the per-frame noise, of the full run). Windows are laid
    out from the first frame given.

    When a window is submitted, whether the next one is the shifted last window (hence where it
    starts) depends on where the input ends. eager=False reads the next window's frames first, so
    only the frames a cross-fade needs come back in float. eager=True submits each window as soon
    as its span is known (one frame past it) and, with in_flight=1, yields every frame before
    asking the input for the frame that could still change it; the frames a later window might
    still cover come back in float (up to window - 1 of each window: 4x the bytes across the
    device edge, held on the host until they are final). The output is identical either way.
    """
    stride = window - overlap
    it = iter(frames)
    buf: dict = {}  # frame index -> input frame, kept while a window still to submit may read it
    n, eof = 0, False  # frames read; end of input seen

    def read_one() -> None:
        nonlocal n, eof
        try:
            buf[first_index + n] = next(it)
            n += 1
        except StopIteration:
            eof = True

    def span_of(k: int) -> Span | None:  # needs n >= k * stride + window, or eof
        s = window_span(k, n, eof, window, overlap) if n else None
        return None if s is None else Span(first_index + s.start, first_index + s.stop)

    def lowest_start(k: int):
        """The lowest start window k (k >= 1) can still have given the frames read; None once the
        end is known and there is no window k. Exact once n >= k * stride + window."""
        if eof:
            s = span_of(k)
            return None if s is None else s.start
        # window k starts at min(k * stride, N - window) for the final count N >= n, and exists
        # only if N > (k - 1) * stride + window (so it starts after window k - 1)
        return first_index + max((k - 1) * stride + 1, min(k * stride, n - window))

    queue: collections.deque = collections.deque()  # (index, span, handle), oldest first
    held: dict = {}  # frame index -> merged value not yet yielded (uint8, or float while it may change)
    state = {"merged": -1, "prev": None, "next_out": first_index}

    def release():
        """Yield, in order, the merged frames no later window can cover any more."""
        bound = lowest_start(state["merged"] + 1)
        while (bound is None or state["next_out"] < bound) and state["next_out"] in held:
            value = held.pop(state["next_out"])
            state["next_out"] += 1
            yield value if value.dtype == np.uint8 else _finish(value)

    def merge(k: int, span: Span, handle):
        out: WindowOutput = handle.result()
        for f in span:
            value = out.blend[f] if f in out.blend else out.frames[f - span.start]
            if f in held:  # overlaps the previous window (held in float): linear cross-fade
                w = crossfade_weight(f, state["prev"], span)
                value = (1 - w) * held[f] + w * value
            held[f] = value
        state["merged"], state["prev"] = k, span
        yield from release()

    last: Span | None = None  # the last window submitted
    k = 0
    while True:
        target = k * stride + window + 1 if eager else (k + 1) * stride + window
        while not eof and n < target:
            read_one()
            yield from release()  # each frame read can make a held frame final
        cur = span_of(k)
        if cur is None:
            break
        after = lowest_start(k + 1)
        wanted = frozenset(f for f in cur if (last is not None and f < last.stop)
                           or (after is not None and f >= after))
        queue.append((k, cur, submit(np.stack([buf[f] for f in cur]), cur, wanted)))
        last = cur
        keep_from = after if after is not None else first_index + n
        for f in [f for f in buf if f < keep_from]:
            del buf[f]  # no later window reads it
        while len(queue) >= max(1, in_flight):
            yield from merge(*queue.popleft())
        k += 1
    while queue:
        yield from merge(*queue.popleft())
    yield from release()


def _finish(frame: np.ndarray) -> np.ndarray:
    # [-1, 1] -> uint8 by truncation, exactly as the release converts its output
    return (np.clip(frame / np.float32(2) + np.float32(0.5), 0, 1) * np.float32(255)).astype(np.uint8)
