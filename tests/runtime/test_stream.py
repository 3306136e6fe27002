import numpy as np
import pytest

from uavrt.runtime.plan import window_spans
from uavrt.runtime.stream import windowed


def _run(n, W, O, value_of=lambda f, span: f):
    calls, sizes = [], []

    def process(frames, span):
        calls.append((span.start, span.stop))
        sizes.append(len(frames))
        # encode the frame index so the output can be checked: value in [-1, 1]
        return [np.full((1, 1, 3), value_of(int(x[0, 0, 0]), span), np.float32) for x in frames]

    frames = (np.full((1, 1, 3), i % 256, np.uint8) for i in range(n))
    return list(windowed(frames, process, W, O)), calls, sizes


@pytest.mark.parametrize("n", [0, 1, 5, 8, 9, 20, 57])
def test_stream_follows_the_window_plan_and_keeps_order(n):
    out, calls, sizes = _run(n, 8, 2, lambda f, span: -1.0)
    assert len(out) == n
    assert calls == [(s.start, s.stop) for s in window_spans(n, 8, 2)] if n else calls == []
    assert all(s <= 8 for s in sizes)  # never more than one window in flight


def test_overlap_frames_are_crossfaded_between_windows():
    # window k outputs the constant k-dependent value; check blended frames lie between
    out, calls, _ = _run(14, 8, 2, lambda f, span: -1.0 if span.start == 0 else 1.0)
    vals = [int(o[0, 0, 0]) for o in out]
    assert calls == [(0, 8), (6, 14)]
    assert vals[:6] == [0] * 6 and vals[8:] == [255] * 6
    assert 0 < vals[6] < vals[7] < 255  # frames 6, 7: linear cross-fade


def test_outputs_use_release_truncation():
    out, _, _ = _run(3, 8, 2, lambda f, span: 0.999)
    assert int(out[0][0, 0, 0]) == int((0.999 / 2 + 0.5) * 255)
