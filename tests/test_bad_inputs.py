"""Every command x bad paths / values / files: exit 2, one line naming the parameter, the value and
what is allowed, no traceback, nothing left on disk, and no weight ever read (issues 14 and 16).

The weight loader is replaced by a function that fails the test if called: every refusal here
must come from the arguments and a probe of the input, before any model exists.
"""

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from uavrt.commands import main
from uavrt.runtime.video.images import PngEncoder
from uavrt.runtime.video.synth import write_test_video


class LoaderCalled(AssertionError):
    pass


@pytest.fixture(autouse=True)
def no_weights(monkeypatch):
    def refuse(*a, **k):
        raise LoaderCalled(f"load_network{a} was called: this refusal came after loading weights")
    import uavrt.models.release as release
    import uavrt.runtime.model as model
    import uavrt.runtime.upscaler as upscaler
    monkeypatch.setattr(release, "load_network", refuse)
    monkeypatch.setattr(model, "load_model", refuse)
    monkeypatch.setattr(upscaler, "load_model", refuse)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad")
    write_test_video(d / "ok.mp4", frames=3, width=16, height=16, fps=Fraction(24), codec="libx264",
                     pix_fmt="yuv420p", audio="aac")
    write_test_video(d / "long.mp4", frames=40, width=64, height=48, fps=Fraction(24), codec="libx264",
                     pix_fmt="yuv420p", container_options={"movflags": "+faststart"})
    data = (d / "long.mp4").read_bytes()
    (d / "cut.mp4").write_bytes(data[: len(data) * 9 // 10])  # index at the front survives the cut
    write_test_video(d / "tiny.mp4", frames=2, width=6, height=8, fps=Fraction(24), codec="ffv1", pix_fmt="bgr0")
    (d / "text.mp4").write_text("not a video")
    (d / "empty.mp4").write_bytes(b"")
    (d / "afile.txt").write_text("a regular file")
    png = PngEncoder()
    (d / "frames").mkdir()
    for i in range(2):
        (d / "frames" / f"f{i}.png").write_bytes(png.encode(np.zeros((16, 16, 3), np.uint8)))
    (d / "frames" / "broken.png").write_text("not an image")
    (d / "holder").mkdir()
    (d / "holder" / "notes.txt").write_text("user file")
    (d / "vids").mkdir()
    (d / "vids" / "a.mp4").write_bytes((d / "ok.mp4").read_bytes())
    (d / "empty_dir").mkdir()
    return d


OK = "{d}/ok.mp4"
O = "{t}/out.mp4"
UP = ["upscale", OK, "-o", O, "--demo", "-q"]

# (name, argv, words the one line must contain)
CASES = [
    # --- upscale: inputs
    ("missing input", ["upscale", "{d}/nope.mp4", "-o", O, "--demo"], ["INPUT", "nope.mp4", "expected"]),
    ("text as video", ["upscale", "{d}/text.mp4", "-o", O, "--demo"], ["text.mp4", "not a video"]),
    ("empty file", ["upscale", "{d}/empty.mp4", "-o", O, "--demo"], ["empty.mp4", "empty"]),
    ("truncated", ["upscale", "{d}/cut.mp4", "-o", O, "--demo"], ["cut.mp4", "40", "--allow-truncated"]),
    ("frames too small", ["upscale", "{d}/tiny.mp4", "-o", O, "--demo"], ["INPUT", "6x8", "[8, 4096]"]),
    ("broken png in folder", ["upscale", "{d}/frames", "-o", O, "--demo", "--fps", "24"], ["broken.png", "not a readable image"]),
    ("-p below RAFT min", [*UP, "-p", "0", "-s", "2"], ["--propagation-steps", "'0'", "121"]),
    ("empty dir", ["upscale", "{d}/empty_dir", "-o", O, "--demo"], ["empty_dir", "no images"]),
    # --- upscale: outputs
    ("webm", [*UP[:3], "{t}/o.webm", "--demo"], ["o.webm", ".mp4: libx264"]),
    ("gif", [*UP[:3], "{t}/o.gif", "--demo"], ["o.gif", ".mkv:"]),
    ("unknown ext", [*UP[:3], "{t}/o.xyz", "--demo"], ["o.xyz", "extension"]),
    ("no ext", [*UP[:3], "{t}/noext", "--demo"], ["noext", "extension"]),
    ("codec not in avi", [*UP[:3], "{t}/o.avi", "--demo", "--codec", "prores_ks"], ["prores_ks", "avi", "libx264"]),
    ("unknown codec", [*UP, "--codec", "h266"], ["codec", "h266", "libx264"]),
    ("crf without crf", [*UP, "--codec", "ffv1", "--crf", "10"], ["crf", "10", "ffv1"]),
    ("crf range", [*UP, "--crf", "99"], ["crf", "99", "[0, 51]"]),
    ("parent is a file", [*UP[:3], "{d}/afile.txt/out.mp4", "--demo"], ["afile.txt", "is a file"]),
    ("under /proc", [*UP[:3], "/proc/uavrt_out.mp4", "--demo"], ["/proc", "writable"]),
    ("exists", [*UP[:3], "{d}/afile.txt", "--demo"], ["afile.txt", "--overwrite"]),
    ("folder target occupied", [*UP[:3], "{d}/holder/", "--demo"], ["holder", "--overwrite"]),
    ("folder target is a file", [*UP[:3], "{d}/afile.txt/", "--demo", "--overwrite"], ["afile.txt", "file"]),
    ("input is output", ["upscale", OK, "-o", OK, "--demo", "--overwrite"], ["--output", "ok.mp4", "other than the input"]),
    ("videos -> file", ["upscale", "{d}/vids", "-o", "{t}/res.mp4", "--demo"], ["--output", "res.mp4", "folder"]),
    ("file target is folder", [*UP[:3], "{d}/empty_dir", "--demo", "--codec", "libx265"], ["codec", "libx265", "folder"]),
    # --- upscale: values
    ("fps 0", ["upscale", "{d}/frames", "-o", O, "--demo", "--fps", "0"], ["--fps", "'0'", "(0, 1000]"]),
    ("fps 1e9", ["upscale", "{d}/frames", "-o", O, "--demo", "--fps", "1e9"], ["--fps", "1e9", "(0, 1000]"]),
    ("fps text", ["upscale", "{d}/frames", "-o", O, "--demo", "--fps", "fast"], ["--fps", "fast"]),
    ("fps on a video", [*UP, "--fps", "24"], ["--fps", "24", "image-folder"]),
    ("tile-overlap -5", [*UP, "--tile-overlap", "-5"], ["tile_overlap", "-5", "[0, 128]"]),
    ("tile-overlap > tile/2", [*UP, "--tile", "64", "--tile-overlap", "40"], ["tile_overlap", "40", "[0, 32]"]),
    ("tile 4", [*UP, "--tile", "4"], ["tile", "4", "[16, 4096]"]),
    ("steps 0", [*UP, "--steps", "0"], ["steps", "0", "[1, 1000]"]),
    ("steps text", [*UP, "--steps", "many"], ["--steps", "many", "int"]),
    ("noise 999", [*UP, "-n", "999"], ["noise_level", "999", "[0, 350]"]),
    ("guidance nan", [*UP, "-g", "nan"], ["guidance_scale", "nan", "finite"]),
    ("guidance 99", [*UP, "-g", "99"], ["guidance_scale", "99", "[0.0, 50.0]"]),
    ("p >= steps", [*UP, "-s", "2", "-p", "5"], ["propagation_steps", "5", "[0, 1]"]),
    ("p text", [*UP, "-p", "a,b"], ["--propagation-steps", "a,b", "integers"]),
    ("color fix", [*UP, "--color-fix", "magic"], ["color_fix", "magic", "wavelet"]),
    ("vae", [*UP, "--vae", "4d"], ["--vae", "4d", "video"]),
    ("tile mode", [*UP, "--tile-mode", "x"], ["tile_mode", "'x'", "blend"]),
    ("clip merge", [*UP, "--clip-merge", "x"], ["clip_merge", "'x'", "mean"]),
    ("propagator", [*UP, "--propagator", "x"], ["propagator", "'x'", "kernel"]),
    ("window 1", [*UP, "--window", "1"], ["window", "1", "[2, 100000]"]),
    ("window overlap", [*UP, "--window", "8", "--window-overlap", "8"], ["window_overlap", "8", "[0, 7]"]),
    ("seed text", [*UP, "--seed", "x"], ["--seed", "'x'", "int"]),
    # --- upscale: model / device
    ("no model", ["upscale", OK, "-o", O], ["--weights", "--demo"]),
    ("both models", [*UP, "--weights", "{d}"], ["--weights", "exactly one"]),
    ("weights missing", ["upscale", OK, "-o", O, "--weights", "{d}/nowhere"], ["--weights", "nowhere", "release weights folder"]),
    ("weights is a file", ["upscale", OK, "-o", O, "--weights", "{d}/afile.txt"], ["--weights", "afile.txt", "folder"]),
    ("weights incomplete", ["upscale", OK, "-o", O, "--weights", "{d}/holder"], ["holder", "unet"]),
    ("device cuda", [*UP, "--device", "cuda"], ["device", "'cuda'", "'cpu'"]),
    ("device cuda:3", [*UP, "--device", "cuda:3"], ["device", "cuda:3", "'cpu'"]),
    ("device tpu", [*UP, "--device", "tpu"], ["device", "tpu", "cuda:N"]),
    ("device foo", [*UP, "--device", "foo"], ["device", "foo", "cuda:N"]),
    ("backend", [*UP, "--backend", "jax"], ["backend", "jax", "onnxruntime"]),
    ("dtype", [*UP, "--dtype", "fp8"], ["precision", "fp8", "fp16"]),
    ("trt without engines", [*UP, "--backend", "tensorrt"], ["engines", "None", "TensorRT"]),
    ("engines missing", [*UP, "--backend", "onnxruntime", "--engines", "{d}/nowhere"], ["--engines", "nowhere", "folder"]),
    # --- other commands
    ("export out is a file", ["export", "--demo", "--out", "{d}/afile.txt"], ["--out", "afile.txt", "existing file"]),
    ("export under /proc", ["export", "--demo", "--out", "/proc/uavrt_e"], ["--out", "/proc", "writable"]),
    ("export networks", ["export", "--demo", "--out", "{t}/e", "--networks", "unet,bogus"], ["--networks", "bogus", "vae_3d"]),
    ("export precision", ["export", "--demo", "--out", "{t}/e", "--precision", "fp8"], ["--precision", "fp8", "fp16"]),
    ("export no model", ["export", "--out", "{t}/e"], ["--weights", "--demo"]),
    ("export weights missing", ["export", "--weights", "{d}/nowhere", "--out", "{t}/e"], ["--weights", "nowhere"]),
    ("export opt level", ["export", "--demo", "--out", "{t}/e", "--opt-level", "9"], ["--opt-level", "9", "[0, 5]"]),
    ("bench threads 0", ["bench", "--demo", "--threads", "0"], ["--threads", "0", "[1, 1024]"]),
    ("bench json /proc", ["bench", "--demo", "--json", "/proc/uavrt.jsonl"], ["--json", "/proc", "writable"]),
    ("bench json under file", ["bench", "--demo", "--json", "{d}/afile.txt/x.jsonl"], ["--json", "afile.txt", "is a file"]),
    ("bench plot /proc", ["bench", "--demo", "--plot", "/proc/uavrt.png"], ["--plot", "/proc", "writable"]),
    ("bench device", ["bench", "--demo", "--device", "tpu"], ["device", "tpu", "cuda:N"]),
    ("bench device cuda", ["bench", "--demo", "--device", "cuda:3"], ["device", "cuda:3", "'cpu'"]),
    ("bench backends", ["bench", "--demo", "--backends", "torch,jax"], ["--backends", "jax", "onnxruntime"]),
    ("bench frames", ["bench", "--demo", "--frames", "x"], ["--frames", "x", "integers"]),
    ("bench no model", ["bench"], ["--demo", "exactly one"]),
    ("golden missing dir", ["golden", "{d}/nowhere"], ["nowhere"]),
    ("golden only bogus", ["golden", str(Path(__file__).parent / "data" / "golden"), "--only", "bogus"], ["--only", "bogus", "cases"]),
    ("golden device", ["golden", "{d}", "--device", "tpu"], ["device", "tpu", "cuda:N"]),
    ("verify engines missing", ["verify", "--engines", "{d}/nowhere", "--demo", "--backend", "onnxruntime", "--device", "cpu"], ["engines", "nowhere", "folder"]),
    ("verify device cuda", ["verify", "--engines", "{d}", "--demo", "--backend", "onnxruntime", "--device", "cuda"], ["device", "'cuda'", "'cpu'"]),
    ("verify backend", ["verify", "--engines", "{d}", "--demo", "--backend", "torch", "--device", "cpu"], ["backend", "torch", "onnxruntime"]),
    ("verify networks", ["verify", "--engines", "{d}", "--demo", "--backend", "onnxruntime", "--device", "cpu", "--networks", "x"], ["network", "'x'", "unet"]),
    ("convert missing", ["convert", "{d}/nowhere", "{t}/w"], ["nowhere"]),
    ("info arch", ["info", "--compile-kernels", "sm_1"], ["sm_1", "sm_80"]),
    ("unknown command", ["transmogrify"], ["transmogrify"]),
    ("unknown flag", [*UP, "--turbo"], ["--turbo"]),
]


@pytest.mark.parametrize("name,argv,words", CASES, ids=[c[0] for c in CASES])
def test_refused_with_one_line(name, argv, words, files, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = [a.format(d=files, t=tmp_path) for a in argv]
    words = [w.format(d=files, t=tmp_path) for w in words]
    before_d = sorted(p.relative_to(files) for p in files.rglob("*"))
    try:
        rc = main(argv)
    except SystemExit as e:  # argparse
        rc = e.code
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert rc == 2, f"exit {rc}: {err}"
    assert "Traceback" not in err
    assert len(lines) == 1, f"expected one line, got: {err}"
    for w in words:
        assert w in lines[0], f"{w!r} missing from: {lines[0]}"
    assert sorted(p.relative_to(files) for p in files.rglob("*")) == before_d  # nothing created there
    assert list(tmp_path.rglob("*")) == []  # ... nor here (no output, no temp, no folder)
