"""Folders of images as input and output: natural order, exact pixels, atomic output folders."""

import numpy as np
import pytest

from uavrt.errors import ConfigError, InputError, OutputExistsError
from uavrt.runtime.video import VideoWriter, open_frames, probe
from uavrt.runtime.video.images import PngEncoder, natural_key
from uavrt.runtime.video.synth import pattern_frame


def _write_pngs(folder, names, size=(40, 30)):
    folder.mkdir(parents=True, exist_ok=True)
    png = PngEncoder()
    imgs = {}
    for i, name in enumerate(names):
        img = pattern_frame(i, *size)
        (folder / name).write_bytes(png.encode(img))
        imgs[name] = img
    return imgs


def test_natural_sort_key():
    names = ["frame10.png", "frame2.png", "Frame1.png", "frame_001b.png", "frame_001a.png"]
    assert sorted(names, key=natural_key) == ["Frame1.png", "frame2.png", "frame10.png",
                                              "frame_001a.png", "frame_001b.png"]


def test_folder_input_in_natural_order_with_exact_pixels(tmp_path):
    names = ["frame10.png", "frame2.png", "frame1.png", "frame3.png"]
    imgs = _write_pngs(tmp_path / "in", names)
    (tmp_path / "in" / "notes.txt").write_text("not an image")  # ignored
    (tmp_path / "in" / ".hidden.png").write_bytes(b"junk")  # ignored
    info = probe(tmp_path / "in")
    assert info.is_image_sequence and info.num_frames == 4 and (info.width, info.height) == (40, 30)
    assert info.fps is None and info.codec == "png" and not info.has_audio
    with open_frames(tmp_path / "in") as r:
        frames = list(r)
    assert [f.index for f in frames] == [0, 1, 2, 3] and all(f.pts is None for f in frames)
    for name, f in zip(["frame1.png", "frame2.png", "frame3.png", "frame10.png"], frames):
        np.testing.assert_array_equal(f.rgb, imgs[name])


def test_jpeg_folder_decodes_full_range(tmp_path):
    import av
    folder = tmp_path / "jpg"
    folder.mkdir()
    ctx = av.CodecContext.create("mjpeg", "w")
    ctx.width, ctx.height, ctx.pix_fmt, ctx.time_base = 64, 16, "yuvj444p", 1
    ctx.qscale = 1
    ramp = np.repeat(np.tile(np.linspace(0, 255, 64).round().astype(np.uint8), (16, 1))[..., None], 3, -1)
    frame = av.VideoFrame.from_ndarray(ramp, format="rgb24").reformat(format="yuvj444p")
    data = b"".join(bytes(p) for p in ctx.encode(frame)) + b"".join(bytes(p) for p in ctx.encode(None))
    (folder / "a.jpg").write_bytes(data)
    assert probe(folder).color_range == "pc"
    with open_frames(folder) as r:
        rgb = next(iter(r)).rgb.astype(int)
    # Read as limited range, Y=235 would come out as 255 (20 levels off): full range keeps it.
    assert np.abs(rgb - ramp).max() <= 4


def test_png_folder_output_round_trip_and_atomic(tmp_path):
    out = tmp_path / "out"
    sent = [pattern_frame(i, 33, 17) for i in range(3)]  # odd size is fine for PNG
    with VideoWriter(str(out) + "/", fps=10) as w:
        for img in sent:
            w.write(img)
            assert not out.exists()  # nothing at the target until close
    assert w.path == out
    assert sorted(p.name for p in out.iterdir()) == ["frame_000000.png", "frame_000001.png", "frame_000002.png"]
    with open_frames(out) as r:
        for img, f in zip(sent, r):
            np.testing.assert_array_equal(f.rgb, img)
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no temp folder left


def test_png_folder_output_rules(tmp_path):
    full = tmp_path / "full"
    _write_pngs(full, ["old.png"])
    with pytest.raises(OutputExistsError):
        VideoWriter(full, fps=10)  # an existing non-empty folder is refused...
    empty = tmp_path / "empty"
    empty.mkdir()
    with VideoWriter(empty, fps=10) as w:  # ...an empty one is simply used
        w.write(pattern_frame(0, 8, 8))
    assert [p.name for p in empty.iterdir()] == ["frame_000000.png"]
    old = (full / "old.png").read_bytes()
    with VideoWriter(full, fps=10, overwrite=True) as w:  # overwrite: only our frame names, others stay
        w.write(pattern_frame(0, 8, 8))
    assert sorted(p.name for p in full.iterdir()) == ["frame_000000.png", "old.png"]
    assert (full / "old.png").read_bytes() == old
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "full"]  # no temp leftovers
    with pytest.raises(ConfigError) as e:
        VideoWriter(f"{tmp_path}/x/", fps=10, codec="libx265")
    assert e.value.param == "codec"
    with VideoWriter(f"{tmp_path}/y/", fps=10, codec="libx264") as w:  # the default: PNG frames
        w.write(pattern_frame(0, 8, 8))
    assert [p.name for p in (tmp_path / "y").iterdir()] == ["frame_000000.png"]


def test_failure_leaves_no_partial_folder(tmp_path):
    with pytest.raises(RuntimeError):
        with VideoWriter(f"{tmp_path}/o/", fps=10) as w:
            w.write(pattern_frame(0, 8, 8))
            raise RuntimeError("model crashed")
    assert list(tmp_path.iterdir()) == []


def test_folder_errors(tmp_path):
    (tmp_path / "none").mkdir()
    (tmp_path / "none" / "readme.txt").write_text("x")
    with pytest.raises(InputError, match="no images"):
        probe(tmp_path / "none")
    _write_pngs(tmp_path / "mixed", ["a1.png", "a2.png"], size=(40, 30))
    _write_pngs(tmp_path / "mixed2", ["a3.png"], size=(41, 30))
    (tmp_path / "mixed2" / "a3.png").rename(tmp_path / "mixed" / "a3.png")
    with pytest.raises(InputError, match=r"mixes image sizes.*a1\.png is 40x30.*a3\.png is 41x30"):
        open_frames(tmp_path / "mixed")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "f1.png").write_text("this is not a png")
    with pytest.raises(InputError, match="f1.png"):
        open_frames(tmp_path / "bad")
