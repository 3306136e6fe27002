"""Upscaler.stream() emits each frame as soon as it can no longer change (issue 16, item 8).

The rule (README "Long videos: windows"): windows of W frames start every W - O frames and the
last one is shifted back to end at the last frame. So, reading the input lazily, frame f is
final once (a) every window covering it has been computed, which needs its span to be known:
an unshifted window [s, s+W) is known once frame s+W-1 has been read, the shifted last window
only at the end of the input; and (b) no later window can still cover it: the last window
starts at N - W >= f + 1 once frame f + W has been read. A streaming upscaler must hand frame f
out before it asks the input for anything past that point. Today's stream() reads a whole
further window first, so on a video shorter than two windows nothing comes out until the whole
input is read.

Files do not need this (upscale_file reads ahead, eager=False, for fewer float copies): both
orders give the same frames, checked here too.
"""

import numpy as np
import pytest

from uavrt.config import RunConfig, SamplerConfig, WindowConfig
from uavrt.runtime.upscaler import Upscaler

W, O = 8, 2


@pytest.fixture(scope="module")
def up():
    return Upscaler.demo(RunConfig(sampler=SamplerConfig(steps=1, guidance_scale=1.0),
                                   window=WindowConfig(frames=W, overlap=O)))


def _windows(n):
    """The README's rule, written out here (not imported) so the test is its own reference."""
    spans, start = [], 0
    while True:
        stop = start + W
        if stop >= n:
            spans.append((max(0, n - W), n))
            return spans
        spans.append((start, stop))
        start += W - O


def _deadline(f, n):
    """The input request (0-based; request n is the end-of-input probe) before which frame f
    must have been emitted."""
    need = f + W + 1 if f + W + 1 <= n else n + 1  # (b): frame f + W read (or the end seen)
    for k, (start, stop) in enumerate(_windows(n)):
        if start <= f < stop:
            nominal_stop = k * (W - O) + W
            known = stop if stop == nominal_stop else n + 1  # (a): shifted last window: at the end
            need = max(need, known)
    return need  # n + 1: only after the end of input was seen (no constraint)


def _run(up, n):
    events = []  # ("read", i) before input i is handed over; ("end",) when input is exhausted
    emitted = []

    def source():
        for i in range(n):
            events.append(("read", i, len(emitted)))
            yield np.full((8, 8, 3), 10 * i % 256, np.uint8)
        events.append(("read", n, len(emitted)))  # the end-of-input probe

    for out in up.stream(source()):
        assert out.shape == (32, 32, 3)
        emitted.append(out)
    return events, emitted


@pytest.mark.parametrize("n", [12, 20, 23])  # 12: shorter than two windows; 20: three unshifted windows
def test_each_frame_leaves_as_soon_as_it_is_final(up, n):
    events, emitted = _run(up, n)
    assert len(emitted) == n
    emitted_before = {e[1]: e[2] for e in events}  # request index -> frames emitted before it
    late = [(f, _deadline(f, n)) for f in range(n) if _deadline(f, n) <= n and emitted_before[_deadline(f, n)] <= f]
    assert not late, (f"frames emitted only after the input was read further than needed, as (frame, "
                      f"request it should precede): {late}; emitted before each request: {emitted_before}")


def test_the_rule_itself():
    # 12 frames, W=8, O=2: windows [0,8) and the shifted last [4,12)
    assert _windows(12) == [(0, 8), (4, 12)] and _windows(20) == [(0, 8), (6, 14), (12, 20)]
    assert [_deadline(f, 12) for f in range(5)] == [9, 10, 11, 12, 13]  # 13: after the end (frame 4 is in [4,12))
    assert [_deadline(f, 20) for f in (0, 5, 6, 11, 12)] == [9, 14, 15, 20, 21]


def test_eager_and_read_ahead_give_the_same_frames(up):
    frames = [np.random.default_rng(i).integers(0, 256, (8, 8, 3), dtype=np.uint8) for i in range(13)]
    eager = list(up.stream(iter(frames)))
    ahead = list(up.stream(iter(frames), eager=False))
    assert len(eager) == len(ahead) == 13 and all(np.array_equal(a, b) for a, b in zip(eager, ahead))
