import itertools

import pytest
import torch

from uavrt.errors import ConfigError
from uavrt.runtime.plan import (Span, clip_spans, clip_weights, crossfade_weight, plan_tiles, release_tiles,
                                tile_spans, tile_weights, window_span, window_spans)


def spans(xs):
    return [(s.start, s.stop) for s in xs]


def test_clip_schedule_matches_release_examples():
    # golden README: T=10 -> [0,8),[2,10); T=13 -> [0,8),[5,13),[5,13); T<=8 -> one clip
    assert spans(clip_spans(10)) == [(0, 8), (2, 10)]
    assert spans(clip_spans(13)) == [(0, 8), (5, 13), (5, 13)]
    assert spans(clip_spans(8)) == [(0, 8)]
    assert spans(clip_spans(3)) == [(0, 3)]


@pytest.mark.parametrize("T", [9, 10, 13, 14, 20, 31, 64])
@pytest.mark.parametrize("merge", ["release", "mean"])
def test_clip_weights_sum_to_one_and_reproduce_running_average(T, merge):
    cs = clip_spans(T)
    w = clip_weights(cs, T, merge)
    outs = [torch.randn(s.size, dtype=torch.float64) for s in cs]
    merged = torch.zeros(T, dtype=torch.float64)
    for s, o, ws in zip(cs, outs, w):
        merged[s.start:s.stop] += o * torch.tensor(ws, dtype=torch.float64)
    total = torch.zeros(T, dtype=torch.float64)
    for s, ws in zip(cs, w):
        total[s.start:s.stop] += torch.tensor(ws, dtype=torch.float64)
    assert torch.allclose(total, torch.ones(T, dtype=torch.float64))
    if merge == "release":  # the release's loop: first clip kept, later ones 0.5*old + 0.5*new
        ref = torch.full((T,), float("nan"), dtype=torch.float64)
        for s, o in zip(cs, outs):
            seg = ref[s.start:s.stop]
            ref[s.start:s.stop] = torch.where(seg.isnan(), o, 0.5 * seg + 0.5 * o)
        assert torch.allclose(merged, ref)


def test_release_merge_weights_t13():
    w = clip_weights(clip_spans(13), 13)
    # frames 5-7 end up 0.25 (first clip) / 0.75 (the duplicated last clip)
    assert w[0][5:8] == [0.25] * 3 and [a + b for a, b in zip(w[1][:3], w[2][:3])] == [0.75] * 3


@pytest.mark.parametrize("size,tile,overlap", [(100, 40, 8), (64, 64, 8), (65, 32, 16), (300, 256, 64), (17, 8, 0)])
def test_tiles_same_shape_clamped_and_weights_sum_to_one(size, tile, overlap):
    ts = tile_spans(size, tile, overlap)
    assert {s.size for s in ts} == {min(tile, size)}
    assert ts[0].start == 0 and ts[-1].stop == size and all(0 <= s.start < s.stop <= size for s in ts)
    covered = set(itertools.chain.from_iterable(range(s.start, s.stop) for s in ts))
    assert covered == set(range(size))
    w = tile_weights(ts, size)
    total = [0.0] * size
    for s, ws in zip(ts, w):
        for p, v in zip(range(s.start, s.stop), ws):
            assert v >= 0
            total[p] += v
    assert max(abs(t - 1) for t in total) < 1e-12


def test_2d_tile_weights_sum_to_one():
    H, W = 70, 90
    tiles = plan_tiles(H, W, 32, 8)
    acc = torch.zeros(H, W, dtype=torch.float64)
    rw = {(s.start, s.stop): torch.tensor(w, dtype=torch.float64)
          for s, w in zip(tile_spans(H, 32, 8), tile_weights(tile_spans(H, 32, 8), H))}
    cw = {(s.start, s.stop): torch.tensor(w, dtype=torch.float64)
          for s, w in zip(tile_spans(W, 32, 8), tile_weights(tile_spans(W, 32, 8), W))}
    for t in tiles:
        acc[t.rows.start:t.rows.stop, t.cols.start:t.cols.stop] += (
            rw[(t.rows.start, t.rows.stop)][:, None] * cw[(t.cols.start, t.cols.stop)][None, :])
    assert torch.allclose(acc, torch.ones_like(acc))


def test_overlap_not_smaller_than_tile_is_refused():
    with pytest.raises(ConfigError, match="tile_overlap"):
        tile_spans(100, 10, 10)


def test_release_tiles_cover_frame_once():
    H, W = 300, 500
    seen = torch.zeros(H, W)
    for core, pad in release_tiles(H, W, 256, 64):
        seen[core.rows.start:core.rows.stop, core.cols.start:core.cols.stop] += 1
        assert pad.rows.start <= core.rows.start and pad.rows.stop >= core.rows.stop
        assert pad.rows.start >= 0 and pad.cols.stop <= W
    assert (seen == 1).all()


@pytest.mark.parametrize("n", [1, 7, 8, 9, 31, 32, 33, 100, 401])
def test_windows_cover_stream_with_full_length_last_window(n):
    W, O = 8, 2
    ws = window_spans(n, W, O)
    assert ws[0].start == 0 and ws[-1].stop == n
    assert all(s.size == min(W, n) for s in ws)
    for a, b in zip(ws, ws[1:]):
        assert b.start > a.start and b.start < a.stop  # ordered, overlapping, no gap
        assert a.stop - b.start >= O


def test_window_span_needs_whole_window_or_eof():
    with pytest.raises(ValueError):
        window_span(0, 3, False, 8, 2)
    assert window_span(0, 3, True, 8, 2) == Span(0, 3)


def test_crossfade_ramps_linearly():
    prev, cur = Span(0, 8), Span(6, 14)
    ws = [crossfade_weight(f, prev, cur) for f in range(4, 10)]
    assert ws == [0.0, 0.0, 1 / 3, 2 / 3, 1.0, 1.0]
