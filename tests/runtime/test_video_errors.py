"""Every input and output failure: a clear error naming the path/parameter, and no partial output."""

import os
from fractions import Fraction

import av
import numpy as np
import pytest

from uavrt.errors import ConfigError, InputError, OutputExistsError
from uavrt.runtime.video import VideoWriter, open_frames, probe
from uavrt.runtime.video.synth import pattern_frame, write_test_video


def _drain(path):
    with open_frames(path) as r:
        return sum(1 for _ in r)


# ----------------------------------------------------------------------------- bad inputs

def test_missing_empty_and_non_video_files(tmp_path):
    with pytest.raises(InputError, match="does not exist") as e:
        probe(tmp_path / "nope.mp4")
    assert "nope.mp4" in str(e.value)
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(InputError, match="empty file"):
        probe(tmp_path / "empty.mp4")
    (tmp_path / "notes.mp4").write_text("this is a text file, not a video\n" * 20)
    with pytest.raises(InputError, match="not a video") as e:
        probe(tmp_path / "notes.mp4")
    assert "notes.mp4" in str(e.value)


def test_audio_only_and_zero_frame_inputs(tmp_path):
    p = tmp_path / "audio.mka"
    out = av.open(str(p), "w")
    a = out.add_stream("pcm_s16le", rate=8000, layout="mono")
    frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16", layout="mono")
    frame.sample_rate, frame.pts = 8000, 0
    for pk in [*a.encode(frame), *a.encode(None)]:
        out.mux(pk)
    out.close()
    with pytest.raises(InputError, match="no video stream.*audio"):
        probe(p)
    # A video track that holds no frame at all (only the audio track has packets).
    z = tmp_path / "zero.mkv"
    out = av.open(str(z), "w")
    v = out.add_stream("ffv1", rate=10)
    v.width, v.height, v.pix_fmt = 16, 16, "bgr0"
    a = out.add_stream("pcm_s16le", rate=8000, layout="mono")
    for pk in [*a.encode(frame), *a.encode(None)]:
        out.mux(pk)
    out.close()
    with pytest.raises(InputError, match="zero frames"):
        probe(z)


@pytest.fixture(scope="module")
def h264(tmp_path_factory):
    d = tmp_path_factory.mktemp("h264")
    plain, fast = d / "plain.mp4", d / "fast.mp4"
    write_test_video(plain, frames=16, codec="libx264", pix_fmt="yuv420p")
    write_test_video(fast, frames=16, codec="libx264", pix_fmt="yuv420p",
                     container_options={"movflags": "+faststart"})
    return plain, fast


def test_truncated_mp4_fails_at_open(tmp_path, h264):
    plain, fast = h264
    for src in (plain, fast):  # index at the end (lost) / at the front (points past the end)
        cut = tmp_path / f"cut_{src.name}"
        cut.write_bytes(src.read_bytes()[: src.stat().st_size * 6 // 10])
        with pytest.raises(InputError, match="truncated") as e:
            open_frames(cut)
        assert str(cut) in str(e.value)


def test_truncated_matroska_names_the_frame_reached(tmp_path):
    src = tmp_path / "v.mkv"
    write_test_video(src, frames=16)
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(src.read_bytes()[: src.stat().st_size * 6 // 10])
    reader = open_frames(cut)  # the file opens: the cut only shows at the end of the data
    with pytest.raises(InputError, match=r"truncated or corrupt: decoding stopped at frame (\d+)") as e:
        with reader:
            for f in reader:
                last = f.index
    assert f"frame {last + 1}" in str(e.value) and 0 < last < 15


def test_truncated_avi_is_caught_by_the_frame_count(tmp_path):
    src = tmp_path / "v.avi"
    write_test_video(src, frames=16, codec="mpeg4", pix_fmt="yuv420p")
    cut = tmp_path / "cut.avi"
    cut.write_bytes(src.read_bytes()[: src.stat().st_size * 9 // 10])  # index (at the end) lost
    with pytest.raises(InputError, match=r"decoding stopped at frame \d+ but the container lists 16"):
        _drain(cut)


def test_frame_lost_mid_stream_with_the_end_reached_is_a_warning(tmp_path, caplog):
    # AVI index positions point at chunk headers: wiping one loses that frame, the rest decode.
    src = tmp_path / "v.avi"
    write_test_video(src, frames=8, codec="png", pix_fmt="rgb24")
    with av.open(str(src)) as c:
        pos = c.streams.video[0].index_entries[5].pos
    data = bytearray(src.read_bytes())
    data[pos:pos + 16] = bytes(16)
    src.write_bytes(bytes(data))
    with caplog.at_level("WARNING", logger="uavrt.runtime.video"):
        assert _drain(src) == 7
    assert any("7 of the 8 frames" in r.getMessage() for r in caplog.records)


def test_corrupt_frame_mid_stream_names_the_frame(tmp_path):
    # PNG-coded video: a damaged frame is a hard decoder error (H.264 would conceal it).
    src = tmp_path / "png.mov"
    write_test_video(src, frames=8, codec="png", pix_fmt="rgb24")
    with av.open(str(src)) as c:
        pos = c.streams.video[0].index_entries[5].pos
    data = bytearray(src.read_bytes())
    data[pos:pos + 16] = bytes(16)  # wipe the PNG signature of frame 5
    src.write_bytes(bytes(data))
    seen = []
    with pytest.raises(InputError, match="decoding failed at frame 5"):
        with open_frames(src) as r:
            for f in r:
                seen.append(f.index)
    assert seen == [0, 1, 2, 3, 4]


# ----------------------------------------------------------------------------- bad writer settings

def test_unknown_codec_names_parameter_value_and_choices(tmp_path):
    with pytest.raises(ConfigError) as e:
        VideoWriter(tmp_path / "o.mp4", fps=10, codec="h264_nvenc_turbo")
    assert e.value.param == "codec" and e.value.value == "h264_nvenc_turbo"
    for name in ("libx264", "libx265", "ffv1", "prores_ks", "libx264rgb"):
        assert name in e.value.allowed
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("kwargs,param", [
    ({"codec": "ffv1", "crf": 10}, "crf"),
    ({"crf": 60}, "crf"),
    ({"pix_fmt": "rgb48be"}, "pix_fmt"),
    ({"fps": 0}, "fps"),
    ({"fps": "fast"}, "fps"),
    ({"time_base": -1}, "time_base"),
])
def test_bad_settings_are_config_errors(tmp_path, kwargs, param):
    kwargs = {"fps": 10, **kwargs}
    with pytest.raises(ConfigError) as e:
        VideoWriter(tmp_path / "o.mp4", **kwargs)
    assert e.value.param == param
    assert list(tmp_path.iterdir()) == []


def test_codec_the_container_cannot_hold_and_unknown_extension(tmp_path):
    with pytest.raises(ConfigError) as e:
        VideoWriter(tmp_path / "o.mp4", fps=10, codec="prores_ks")
    assert e.value.param == "codec" and "libx264" in e.value.allowed and "prores_ks" not in e.value.allowed
    with pytest.raises(ConfigError) as e:
        VideoWriter(tmp_path / "o.notaformat", fps=10)
    assert e.value.param == "output"
    assert list(tmp_path.iterdir()) == []


def test_bad_frames_and_timestamps(tmp_path):
    with VideoWriter(tmp_path / "o.mkv", fps=10, codec="ffv1") as w:
        with pytest.raises(ConfigError) as e:
            w.write(np.zeros((8, 8, 3), np.float32))
        assert e.value.param == "rgb"
        w.write(pattern_frame(0, 8, 8), pts=5)
        with pytest.raises(ConfigError) as e:
            w.write(pattern_frame(1, 8, 8), pts=5)
        assert e.value.param == "pts"
        with pytest.raises(ConfigError) as e:
            w.write(pattern_frame(1, 10, 8), pts=6)
        assert e.value.param == "rgb"
        w.write(pattern_frame(1, 8, 8), pts=6)
    assert _drain(w.path) == 2


# ----------------------------------------------------------------------------- output safety

def test_existing_output_is_refused_before_any_work(tmp_path):
    out = tmp_path / "o.mp4"
    out.write_bytes(b"precious")
    # Even the missing copy source is not looked at: the refusal comes first.
    with pytest.raises(OutputExistsError):
        VideoWriter(out, fps=10, copy_streams_from=str(tmp_path / "missing.mp4"))
    assert out.read_bytes() == b"precious" and [p.name for p in tmp_path.iterdir()] == ["o.mp4"]
    with VideoWriter(out, fps=10, codec="ffv1", overwrite=True) as w:
        w.write(pattern_frame(0, 8, 8))
    assert _drain(out) == 1


def test_exception_mid_write_leaves_nothing(tmp_path):
    out = tmp_path / "o.mp4"
    with pytest.raises(RuntimeError, match="model crashed"):
        with VideoWriter(out, fps=10) as w:
            for i in range(3):
                w.write(pattern_frame(i, 16, 16))
            raise RuntimeError("model crashed")
    assert list(tmp_path.iterdir()) == []


def test_abort_close_without_frames_and_bad_copy_source(tmp_path):
    w = VideoWriter(tmp_path / "a.mkv", fps=10, codec="ffv1")
    w.write(pattern_frame(0, 8, 8))
    w.abort()
    w.abort()  # idempotent
    with pytest.raises(InputError, match="no frames"):
        VideoWriter(tmp_path / "b.mkv", fps=10, codec="ffv1").close()
    (tmp_path / "junk.txt").write_text("not media")
    with pytest.raises(InputError, match="copy_streams_from"):
        VideoWriter(tmp_path / "c.mkv", fps=10, codec="ffv1", copy_streams_from=str(tmp_path / "junk.txt"))
    assert [p.name for p in tmp_path.iterdir()] == ["junk.txt"]


def test_output_file_gets_normal_permissions(tmp_path):
    with VideoWriter(tmp_path / "o.mkv", fps=Fraction(10), codec="ffv1") as w:
        w.write(pattern_frame(0, 8, 8))
    umask = os.umask(0)
    os.umask(umask)
    assert w.path.stat().st_mode & 0o777 == 0o666 & ~umask  # like any new file, not mkstemp's 0600
