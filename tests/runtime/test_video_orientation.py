"""Rotation metadata: frames come out upright; outputs are written upright, without rotation."""

import logging
import math

import av
import numpy as np
import pytest

from uavrt.runtime.video import VideoWriter, open_frames, probe
from uavrt.runtime.video.orientation import (
    Orientation,
    from_display_matrix,
    from_rotate_tag,
)
from uavrt.runtime.video.synth import pattern_frame, write_test_video

LOSSLESS_MP4 = dict(codec="libx264rgb", pix_fmt="rgb24", options={"qp": "0"})


def _upright(img, ccw_degrees, hflip):
    """What PyAV documents set_display_rotation() to mean: rotate CCW, then mirror."""
    out = np.rot90(img, k=ccw_degrees // 90)
    return out[:, ::-1] if hflip else out


@pytest.mark.parametrize("ccw,hflip", [(90, False), (180, False), (270, False), (0, True), (90, True)])
def test_display_matrix_is_applied(tmp_path, ccw, hflip):
    src = tmp_path / "rot.mp4"
    sent = write_test_video(src, frames=3, width=64, height=48, rotation=ccw, hflip=hflip, **LOSSLESS_MP4)
    info = probe(src)
    want = _upright(sent[0], ccw, hflip)
    assert (info.height, info.width) == want.shape[:2]
    assert info.rotation == (-ccw) % 360
    with open_frames(src) as r:
        got = list(r)
    for img, f in zip(sent, got):
        np.testing.assert_array_equal(f.rgb, _upright(img, ccw, hflip))
        assert f.rgb.flags.c_contiguous


def test_output_is_upright_without_rotation_metadata(tmp_path):
    src = tmp_path / "portrait.mp4"
    sent = write_test_video(src, frames=2, rotation=90, **LOSSLESS_MP4)
    with open_frames(src) as r, VideoWriter(tmp_path / "out.mp4", fps=r.info.fps, **LOSSLESS_MP4) as w:
        for f in r:
            w.write(f.rgb, f.pts)
    info = probe(w.path)
    assert (info.rotation, info.width, info.height) == (0, 48, 64)
    with av.open(str(w.path)) as c:
        frame = next(c.decode(video=0))
        assert frame.rotation == 0
        assert not any("DISPLAYMATRIX" in str(sd.type) for sd in frame.side_data)
        np.testing.assert_array_equal(frame.to_ndarray(format="rgb24"), np.rot90(sent[0], 1))


def _matrix(ccw_degrees):
    """FFmpeg's av_display_rotation_set() layout, 16.16 fixed point (2.30 for the last)."""
    r = math.radians(ccw_degrees)
    c, s = round(math.cos(r) * 65536), round(math.sin(r) * 65536)
    return [c, -s, 0, s, c, 0, 0, 0, 1 << 30]


def test_matrix_decoding_matches_what_pyav_writes(tmp_path):
    # The files above carry matrices written by FFmpeg; check the same decoding on built ones.
    assert from_display_matrix(_matrix(90)) == Orientation(270)
    assert from_display_matrix(_matrix(-90)) == Orientation(90)
    assert from_display_matrix(_matrix(180)) == Orientation(180)
    assert from_display_matrix(_matrix(0)) == Orientation(0)


def test_odd_angles_and_bad_tags_are_ignored(caplog):
    with caplog.at_level(logging.WARNING):
        assert from_display_matrix(_matrix(45)) == Orientation()
        assert from_rotate_tag("33") == Orientation()
    assert from_rotate_tag("90") == Orientation(90)
    assert from_rotate_tag("-90") == Orientation(270)
    assert from_rotate_tag("garbage") == Orientation()
    assert len(caplog.records) == 2


def test_orientation_apply_covers_the_eight_cases():
    img = pattern_frame(0, 5, 3)
    assert Orientation(90).apply(img).shape == (5, 3, 3)
    np.testing.assert_array_equal(Orientation(90).apply(img)[0, -1], img[0, 0])  # top-left -> top-right
    np.testing.assert_array_equal(Orientation(270).apply(img)[-1, 0], img[0, 0])  # top-left -> bottom-left
    np.testing.assert_array_equal(Orientation(0, mirror=True).apply(img), img[:, ::-1])
    np.testing.assert_array_equal(Orientation(180, mirror=True).apply(img), img[::-1])
    assert Orientation().apply(img) is img
