"""YUV -> RGB honours the stream's range (full "pc" vs limited "tv") and matrix tags."""

import numpy as np
import pytest

from uavrt.runtime.video import open_frames, probe
from uavrt.runtime.video.synth import write_yuv_video

W, H = 64, 48
RAMP = np.tile(np.linspace(0, 255, W).round().astype(np.uint8), (H, 1))  # Y = 0..255 across
GREY = np.full((H // 2, W // 2), 128, np.uint8)


def _first_rgb(path):
    with open_frames(path) as r:
        return next(iter(r)).rgb


def test_full_range_spans_0_to_255(tmp_path):
    p = tmp_path / "full.mkv"
    write_yuv_video(p, RAMP, GREY, GREY, color_range=2)
    info = probe(p)
    assert info.color_range == "pc"
    rgb = _first_rgb(p).astype(int)
    assert rgb.min() == 0 and rgb.max() == 255
    np.testing.assert_allclose(rgb[0, :, 1], RAMP[0], atol=1)  # grey: R = G = B = Y


def test_legacy_yuvj420p_is_full_range(tmp_path):
    # Like old_movie_1.mp4 of the release: H.264 in the deprecated full-range pixel format.
    p = tmp_path / "j.mp4"
    write_yuv_video(p, RAMP, GREY, GREY, color_range=2, codec="libx264", pix_fmt="yuvj420p",
                    options={"qp": "0"})
    info = probe(p)
    assert (info.pix_fmt, info.color_range) == ("yuvj420p", "pc")
    rgb = _first_rgb(p).astype(int)
    np.testing.assert_allclose(rgb[0, :, 1], RAMP[0], atol=1)


def test_limited_range_is_expanded(tmp_path):
    p = tmp_path / "tv.mkv"
    write_yuv_video(p, RAMP, GREY, GREY, color_range=1)
    assert probe(p).color_range == "tv"
    rgb = _first_rgb(p).astype(int)
    want = np.clip((RAMP[0].astype(float) - 16) * 255 / 219, 0, 255)
    np.testing.assert_allclose(rgb[0, :, 1], want, atol=1.01)
    inside = (RAMP[0] >= 16) & (RAMP[0] <= 235)
    assert rgb[0, ~inside, 1].tolist() == [0 if y < 16 else 255 for y in RAMP[0, ~inside]]


# Kr/Kb of the two matrices; R = Y' + 2(1-Kr) V', G from the luma equation (limited range).
KR_KB = {1: (0.2126, 0.0722), 5: (0.299, 0.114)}


def _expected_rgb(y, u, v, space):
    kr, kb = KR_KB[space]
    yn, un, vn = (y - 16) / 219, (u - 128) / 224, (v - 128) / 224
    r = yn + 2 * (1 - kr) * vn
    b = yn + 2 * (1 - kb) * un
    g = (yn - kr * r - kb * b) / (1 - kr - kb)
    return np.clip(np.array([r, g, b]) * 255, 0, 255)


@pytest.mark.parametrize("space,name", [(1, "bt709"), (5, "bt601")])
def test_matrix_tag_is_honoured(tmp_path, space, name):
    y, u, v = 110, 90, 200  # a saturated orange: the two matrices differ by > 10 levels here
    p = tmp_path / "m.mkv"
    write_yuv_video(p, np.full((H, W), y, np.uint8), np.full((H // 2, W // 2), u, np.uint8),
                    np.full((H // 2, W // 2), v, np.uint8), color_range=1, colorspace=space)
    assert probe(p).color_space == name
    got = _first_rgb(p)[H // 2, W // 2].astype(float)
    np.testing.assert_allclose(got, _expected_rgb(y, u, v, space), atol=1.5)
    other = _expected_rgb(y, u, v, {1: 5, 5: 1}[space])
    assert np.abs(got - other).max() > 10  # the test can tell the matrices apart


def test_untagged_hd_uses_bt709_and_sd_bt601(tmp_path):
    y, u, v = 110, 90, 200
    for (w, h), space in [((1280, 720), 1), ((64, 48), 5)]:
        p = tmp_path / f"untagged_{w}.mkv"
        write_yuv_video(p, np.full((h, w), y, np.uint8), np.full((h // 2, w // 2), u, np.uint8),
                        np.full((h // 2, w // 2), v, np.uint8), color_range=1, colorspace=2, frames=1)
        got = _first_rgb(p)[h // 2, w // 2].astype(float)
        np.testing.assert_allclose(got, _expected_rgb(y, u, v, space), atol=1.5)
