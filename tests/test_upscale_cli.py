"""`uavrt upscale` end to end with the demo model, and every refusal (no partial output)."""

from fractions import Fraction

import av
import pytest

from uavrt.commands import main
from uavrt.runtime.video import probe
from uavrt.runtime.video.synth import write_test_video

FAST = ["--demo", "--steps", "2", "-q"]


def _audio_packets(path):
    with av.open(str(path)) as c:
        return [bytes(p) for p in c.demux(c.streams.audio[0]) if p.size]


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    p = tmp_path_factory.mktemp("in") / "clip.mp4"
    write_test_video(p, frames=10, width=24, height=16, fps=Fraction(25, 2), codec="libx264", pix_fmt="yuv420p",
                     audio="aac")
    return p


def test_end_to_end_frames_size_fps_and_audio(clip, tmp_path, capsys):
    out = tmp_path / "out.mp4"
    assert main(["upscale", str(clip), "-o", str(out), *FAST, "--window", "8", "--window-overlap", "2"]) == 0
    assert "DEMO MODEL" in capsys.readouterr().err
    a, b = probe(clip), probe(out)
    assert (b.width, b.height) == (4 * a.width, 4 * a.height)
    assert b.num_frames == a.num_frames == 10
    assert b.fps == a.fps and b.has_audio
    assert _audio_packets(out) == _audio_packets(clip)  # stream-copied, not re-encoded


def _fails(args, tmp_path, capsys, match):
    out = tmp_path / "never.mp4"
    rc = main(["upscale", *args[:1], "-o", str(out), *FAST, *args[1:]])
    err = capsys.readouterr().err
    assert rc != 0 and match in err, err
    assert not out.exists() and not [p for p in tmp_path.iterdir() if "partial" in p.name]
    return err


def test_missing_file(tmp_path, capsys):
    _fails([str(tmp_path / "nope.mp4")], tmp_path, capsys, "INPUT")


def test_not_a_video(tmp_path, capsys):
    p = tmp_path / "notes.mp4"
    p.write_text("hello, this is not a video")
    _fails([str(p)], tmp_path, capsys, "notes.mp4")


def test_zero_frames(tmp_path, capsys):
    z = tmp_path / "zero.mkv"
    out = av.open(str(z), "w")
    v = out.add_stream("ffv1", rate=10)
    v.width, v.height, v.pix_fmt = 16, 16, "bgr0"
    out.close()
    _fails([str(z)], tmp_path, capsys, "zero.mkv")


def test_truncated_file(clip, tmp_path, capsys):
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(clip.read_bytes()[: clip.stat().st_size // 2])
    _fails([str(cut)], tmp_path, capsys, "truncated")


def test_unsupported_size(tmp_path, capsys):
    p = tmp_path / "tiny.mkv"
    write_test_video(p, frames=2, width=4, height=4)
    err = _fails([str(p)], tmp_path, capsys, "4x4")
    assert "[8, 4096]" in err


@pytest.mark.parametrize("flags,match", [
    (["--noise-level", "400"], "noise_level=400"),
    (["--noise-level", "-1"], "noise_level=-1"),
    (["--steps", "0"], "steps=0"),
    (["--steps", "4", "-p", "4"], "propagation_steps=[4]"),
    (["--color-fix", "sepia"], "color_fix='sepia'"),
    (["--tile", "32", "--tile-overlap", "20"], "tile_overlap=20"),
])
def test_bad_settings_name_parameter_value_and_range(clip, tmp_path, capsys, flags, match):
    _fails([str(clip), *flags], tmp_path, capsys, match)


def test_existing_output_is_kept_unless_overwrite(clip, tmp_path, capsys):
    out = tmp_path / "exists.mp4"
    out.write_bytes(b"precious")
    assert main(["upscale", str(clip), "-o", str(out), *FAST]) == 2
    assert "already exists" in capsys.readouterr().err and out.read_bytes() == b"precious"


def test_weights_and_demo_are_exclusive(clip, tmp_path, capsys):
    assert main(["upscale", str(clip), "-o", str(tmp_path / "o.mp4"), "--steps", "2"]) == 2
    assert "--weights" in capsys.readouterr().err
