"""AVI output keeps frame times and the audio/video offset like MKV does (issue 16 item 3).

AVI stores only a frame rate and slots; the checks decode with PyAV: the stream's time base and
frame count, the packets' slots (dts), an intra codec's frame pts (no reordering guess involved),
uavrt's own reader, and the first audio time.
"""

from fractions import Fraction

import av
import numpy as np
import pytest

from uavrt.runtime.video import VideoWriter, open_frames
from uavrt.runtime.video.synth import write_test_video


def _upscale_2x(src, dst, codec="libx264"):
    with open_frames(src) as r, VideoWriter(dst, fps=r.info.fps, time_base=r.info.time_base, codec=codec,
                                             copy_streams_from=str(src)) as w:
        for f in r:
            w.write(np.repeat(np.repeat(f.rgb, 2, 0), 2, 1), f.pts)


def _times(path):
    with open_frames(path) as r:
        tb = r.info.time_base
        return [float(f.pts * tb) for f in r]


def _first_audio_s(path):
    with av.open(str(path)) as c:
        a = c.streams.audio[0]
        f = next(c.decode(a))
        return float(f.pts * f.time_base)


def test_mp4_to_avi_frame_times(tmp_path):
    src = tmp_path / "in.mp4"
    write_test_video(src, frames=2, width=32, height=16, fps=Fraction(24), codec="libx264", pix_fmt="yuv420p")
    _upscale_2x(src, tmp_path / "o.avi")
    _upscale_2x(src, tmp_path / "o.mkv")
    with av.open(str(tmp_path / "o.avi")) as c:
        v = c.streams.video[0]
        assert v.time_base == Fraction(1, 24) and v.frames == 2  # was 1/600 and "50 frames"
        assert [p.dts for p in c.demux(v) if p.size] == [0, 1]
    assert _times(tmp_path / "o.avi") == pytest.approx([0, 1 / 24], abs=1e-9)
    assert _times(tmp_path / "o.avi") == pytest.approx(_times(tmp_path / "o.mkv"), abs=1e-3)  # MKV: 1 ms base


def test_intra_avi_pts_decoded_by_pyav(tmp_path):
    src = tmp_path / "in.mp4"
    write_test_video(src, frames=3, width=32, height=16, fps=Fraction(25), codec="libx264", pix_fmt="yuv420p")
    _upscale_2x(src, tmp_path / "o.avi", codec="ffv1")
    with av.open(str(tmp_path / "o.avi")) as c:
        v = c.streams.video[0]
        assert [float(f.pts * f.time_base) for f in c.decode(v)] == pytest.approx([0, 0.04, 0.08])


def test_avi_with_pcm_keeps_the_av_offset_like_mkv(tmp_path):
    src = tmp_path / "in.avi"
    write_test_video(src, frames=6, width=32, height=16, fps=Fraction(24), codec="libx264", pix_fmt="yuv420p",
                     audio="pcm_s16le")
    assert _times(src)[0] == 0 and _first_audio_s(src) == 0
    for out in ("o.avi", "o.mkv"):
        _upscale_2x(src, tmp_path / out)
    avi, mkv = _times(tmp_path / "o.avi"), _times(tmp_path / "o.mkv")
    assert avi == pytest.approx([i / 24 for i in range(6)], abs=1e-9)  # was: video from 0.083 s
    assert avi == pytest.approx(mkv, abs=1e-3)
    assert _first_audio_s(tmp_path / "o.avi") == _first_audio_s(tmp_path / "o.mkv") == 0
    with av.open(str(tmp_path / "o.avi")) as c:  # no B-frames: decode order is display order
        assert c.streams.video[0].codec_context.has_b_frames == 0
