import numpy as np
import pytest

from uavrt.runtime.plan import crossfade_weight, window_spans
from uavrt.runtime.stream import Done, WindowOutput, _finish, windowed


def _value(f, span):
    # a float per (frame, window) in [-1, 1]: windows disagree, so cross-fades are visible
    return np.float32(((f * 37 + span.start * 11) % 200) / 100.0 - 1.0)


def _submit(log):
    def submit(chunk, span, float_frames):
        log.append((span, float_frames, [int(x[0, 0, 0]) for x in chunk]))
        full = {f: np.full((1, 1, 3), _value(f, span), np.float32) for f in span}
        frames = np.stack([_finish(full[f]) for f in span])
        return Done(WindowOutput(span, frames, {f: full[f] for f in float_frames}))
    return submit


def _reference(n, W, O):
    """Every window in float, blended in order, truncated at the end (the defining rule)."""
    out, prev = {}, None
    for span in window_spans(n, W, O):
        for f in span:
            v = np.full((1, 1, 3), _value(f, span), np.float32)
            out[f] = (1 - crossfade_weight(f, prev, span)) * out[f] + crossfade_weight(f, prev, span) * v \
                if f in out else v
        prev = span
    return [_finish(out[f]) for f in range(n)]


def _frames(n):
    return (np.full((1, 1, 3), i % 256, np.uint8) for i in range(n))


@pytest.mark.parametrize("n,W,O", [(0, 8, 2), (1, 8, 2), (5, 8, 2), (8, 8, 2), (9, 8, 2), (20, 8, 2), (57, 8, 2),
                                   (30, 8, 6), (13, 4, 0)])
@pytest.mark.parametrize("in_flight", [1, 3])
@pytest.mark.parametrize("eager", [False, True])
def test_stream_equals_the_all_float_reference_and_keeps_order(n, W, O, in_flight, eager):
    log = []
    out = list(windowed(_frames(n), _submit(log), W, O, in_flight, eager=eager))
    assert [s for s, _, _ in log] == (window_spans(n, W, O) if n else [])
    assert all(inputs == list(s) for s, _, inputs in log)  # each window got its own frames
    assert len(out) == n
    assert all(np.array_equal(a, b) for a, b in zip(out, _reference(n, W, O)))


def test_only_the_frames_a_crossfade_needs_come_back_in_float():
    log = []
    list(windowed(_frames(14), _submit(log), 8, 2))
    assert [(s.start, s.stop, sorted(ff)) for s, ff, _ in log] == [(0, 8, [6, 7]), (6, 14, [6, 7])]


def test_eager_asks_for_float_only_where_a_later_window_may_still_reach():
    # 14 frames, W=8, O=2: window 0 is submitted once frame 8 is read; window 1 might then still be
    # the shifted last window starting at 1..6, so frames 1..7 come back in float; window 1 is
    # submitted once the end is seen: exact, only its overlap with window 0
    log = []
    list(windowed(_frames(14), _submit(log), 8, 2, eager=True))
    assert [(s.start, s.stop, sorted(ff)) for s, ff, _ in log] == [(0, 8, [1, 2, 3, 4, 5, 6, 7]), (6, 14, [6, 7])]


def test_frames_are_emitted_as_soon_as_no_later_window_changes_them():
    read = []

    def frames():
        for i in range(40):
            read.append(i)
            yield np.full((1, 1, 3), i, np.uint8)

    it = windowed(frames(), _submit([]), 8, 2)
    next(it)  # the first output frame needs window 0 and a look at window 1 only
    assert len(read) <= 8 + 6


def test_in_flight_bounds_the_windows_submitted_but_not_merged():
    pending, peak = [], [0]

    class Handle:
        def __init__(self, out):
            self.out = out
            pending.append(self)
            peak[0] = max(peak[0], len(pending))

        def result(self):
            pending.remove(self)
            return self.out

    inner = _submit([])
    out = list(windowed(_frames(60), lambda c, s, ff: Handle(inner(c, s, ff).result()), 8, 2, in_flight=3))
    assert len(out) == 60 and peak[0] == 3


def test_first_index_shifts_every_span_and_blend_key():
    log_a, log_b = [], []
    out_a = list(windowed(_frames(20), _submit(log_a), 8, 2))
    sub = _submit(log_b)
    out_b = list(windowed(_frames(20), lambda c, s, ff: sub(c, s, ff), 8, 2, first_index=100))
    assert [(s.start - 100, s.stop - 100, sorted(f - 100 for f in ff)) for s, ff, _ in log_b] == \
        [(s.start, s.stop, sorted(ff)) for s, ff, _ in log_a]
    assert len(out_b) == 20  # values differ (they depend on the absolute index), the layout does not
