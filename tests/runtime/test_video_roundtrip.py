"""Reader -> writer round trips: exact pixels for lossless codecs, timing kept, quality bounds."""

from fractions import Fraction

import av
import numpy as np
import pytest

from uavrt.errors import ConfigError
from uavrt.runtime.video import VideoWriter, open_frames, probe
from uavrt.runtime.video.synth import pattern_frame, write_test_video


def _copy(src, dst, **kw):
    """Stream src into dst through the public API, like the runtime does (minus the model)."""
    with open_frames(src) as r, VideoWriter(dst, fps=r.info.fps, time_base=r.info.time_base, **kw) as w:
        for f in r:
            w.write(f.rgb, f.pts)
    return w.path


def _read(path):
    with open_frames(path) as r:
        return list(r)


@pytest.mark.parametrize("ext", ["mkv", "mp4"])
def test_ffv1_bgr0_round_trip_is_pixel_exact_and_keeps_timing(tmp_path, ext):
    src = tmp_path / f"in.{ext}"
    sent = write_test_video(src, frames=12, fps=Fraction(30000, 1001))
    out = _copy(src, tmp_path / f"out.{ext}", codec="ffv1", pix_fmt="bgr0")
    a, b = probe(src), probe(out)
    assert (b.width, b.height, b.num_frames, b.fps, b.time_base) == (64, 48, a.num_frames, a.fps, a.time_base)
    assert b.fps == Fraction(30000, 1001)
    frames_in, frames_out = _read(src), _read(out)
    assert len(frames_out) == 12
    for want, f_in, f_out in zip(sent, frames_in, frames_out):
        np.testing.assert_array_equal(f_in.rgb, want)
        np.testing.assert_array_equal(f_out.rgb, want)
        assert f_out.pts == f_in.pts
    assert frames_out[0].rgb.flags.c_contiguous and frames_out[0].rgb.dtype == np.uint8


def test_libx264rgb_qp0_is_lossless(tmp_path):
    src = tmp_path / "in.mkv"
    sent = write_test_video(src, frames=6)
    out = _copy(src, tmp_path / "out.mp4", codec="libx264rgb", options={"qp": 0})
    for want, got in zip(sent, _read(out)):
        np.testing.assert_array_equal(got.rgb, want)


def test_variable_frame_rate_timestamps_are_kept(tmp_path):
    src = tmp_path / "vfr.mp4"
    tb = Fraction(1, 90000)
    pts = [0, 3000, 9000, 12000, 24000, 27000, 33000]  # irregular gaps: a VFR phone clip
    write_test_video(src, frames=len(pts), pts=pts, time_base=tb, codec="libx264rgb",
                     pix_fmt="rgb24", options={"qp": "0"})
    info = probe(src)
    assert info.time_base == tb
    assert [f.pts for f in _read(src)] == pts
    out = _copy(src, tmp_path / "out.mp4")
    assert probe(out).time_base == tb
    assert [f.pts for f in _read(out)] == pts


def test_missing_pts_are_placed_at_index_over_fps(tmp_path):
    with VideoWriter(tmp_path / "o.mkv", fps=Fraction(25), codec="ffv1") as w:
        for i in range(5):
            w.write(pattern_frame(i, 32, 16))
    got = _read(w.path)
    tb = probe(w.path).time_base
    assert [float(f.pts * tb) for f in got] == pytest.approx([i / 25 for i in range(5)])


def test_output_starts_at_zero_keeping_intervals(tmp_path):
    # An input whose first frame is at 2 s (e.g. cut from a broadcast): output starts at 0.
    with VideoWriter(tmp_path / "o.mkv", fps=10, time_base=Fraction(1, 1000), codec="ffv1") as w:
        for i, p in enumerate([2000, 2100, 2300]):
            w.write(pattern_frame(i, 32, 16), p)
    assert [f.pts for f in _read(w.path)] == [0, 100, 300]


def test_default_libx264_is_high_quality_and_tagged_bt709(tmp_path):
    y, x = np.mgrid[0:96, 0:128]
    smooth = [np.stack([x * 1.5 + 20 + i, y * 2 + 10, 200 - (x + y) * 0.6], -1).astype(np.uint8)
              for i in range(6)]  # no sharp edges: 4:2:0 chroma loss stays small
    with VideoWriter(tmp_path / "o.mp4", fps=24) as w:
        for img in smooth:
            w.write(img)
    info = probe(w.path)
    assert (info.codec, info.pix_fmt, info.color_range, info.color_space) == ("h264", "yuv420p", "tv", "bt709")
    with av.open(str(w.path)) as c:
        cc = c.streams.video[0].codec_context
        assert (int(cc.color_primaries), int(cc.color_trc), int(cc.colorspace)) == (1, 1, 1)
    for want, got in zip(smooth, _read(w.path)):
        mse = np.mean((got.rgb.astype(float) - want) ** 2)
        assert 10 * np.log10(255**2 / mse) > 40  # ~47 dB; decoding as BT.601 or full range gives < 32


def test_odd_sized_input_decodes_exactly(tmp_path):
    src = tmp_path / "odd.mkv"
    sent = write_test_video(src, frames=3, width=65, height=49)
    info = probe(src)
    assert (info.width, info.height) == (65, 49)
    got = _read(src)
    assert got[0].rgb.shape == (49, 65, 3)
    for want, f in zip(sent, got):
        np.testing.assert_array_equal(f.rgb, want)
    out = _copy(src, tmp_path / "odd_out.mkv", codec="ffv1")  # 4:4:4/RGB codecs take odd sizes
    np.testing.assert_array_equal(_read(out)[2].rgb, sent[2])


def test_odd_size_with_420_is_refused_clearly(tmp_path):
    with pytest.raises(ConfigError) as e:
        with VideoWriter(tmp_path / "o.mp4", fps=10) as w:
            w.write(np.zeros((49, 65, 3), np.uint8))
    assert e.value.param == "frame size" and "65x49" in str(e.value) and "yuv420p" in str(e.value)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("codec,ext", [("libx265", "mp4"), ("prores_ks", "mov")])
def test_other_encoders_write_playable_files(tmp_path, codec, ext):
    with VideoWriter(tmp_path / f"o.{ext}", fps=10, codec=codec) as w:
        for i in range(3):
            w.write(pattern_frame(i, 64, 48))
    info = probe(w.path)
    assert info.num_frames == 3 and (info.width, info.height) == (64, 48)
    assert info.codec == {"libx265": "hevc", "prores_ks": "prores"}[codec]
    got = _read(w.path)
    assert len(got) == 3 and np.abs(got[0].rgb[..., 1].astype(int) - pattern_frame(0, 64, 48)[..., 1]).mean() < 6
