"""A user's files are never lost (issue 16 items 1, 2, 7, 9; issue 14 output folders and truncated
inputs): every kind of run into a folder that holds user files leaves each of them byte for byte;
folder targets are created or filled at our frame names only, never removed."""

import hashlib
import os
import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from uavrt.commands import main
from uavrt.runtime.upscaler import Upscaler
from uavrt.runtime.video import open_frames
from uavrt.runtime.video.images import PngEncoder
from uavrt.runtime.video.synth import write_test_video

RUN = ["--demo", "--steps", "1", "-g", "1", "-q", "--fps", "24"]
MID_RUN = [*RUN, "--window", "2", "--window-overlap", "0"]  # fails/stops after window 0 was written
_LOADED = {}


@pytest.fixture(autouse=True)
def demo_loaded_once(monkeypatch):
    """The demo model is loaded once per module; each run gets it with its own settings."""
    real = Upscaler.demo.__func__

    def demo(cls, cfg, backend=None, vae="3d", seed=0):
        if "up" not in _LOADED:
            _LOADED["up"] = real(cls, cfg, backend, vae, seed)
        return _LOADED["up"].with_config(cfg)  # shares the model (and its info: demo=True)
    monkeypatch.setattr(Upscaler, "demo", classmethod(demo))


def _frames(folder: Path, n=4, corrupt=None) -> Path:
    folder.mkdir(parents=True)
    png = PngEncoder()
    for i in range(n):
        data = png.encode(np.full((16, 16, 3), 20 * i, np.uint8))
        if i == corrupt:  # header (size) intact, picture data garbage: fails when decoded, mid-run
            data = data[:33] + bytes(len(data) - 33)
        (folder / f"in_{i}.png").write_bytes(data)
    return folder


def _snapshot(root: Path) -> dict:
    return {str(p.relative_to(root)): (hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir")
            for p in sorted(root.rglob("*"))}


def _user_folder(tmp_path) -> Path:
    videos = tmp_path / "Videos"
    (videos / "holiday").mkdir(parents=True)
    (videos / "notes.txt").write_text("a")
    (videos / "holiday" / "clip.txt").write_text("b")
    (videos / "frame_000099.png").write_bytes(b"not ours: a user's file with a frame-like name")
    return videos


def _user_files_intact(videos: Path, user: dict):
    now = _snapshot(videos)
    for name, digest in user.items():
        assert now.get(name) == digest, f"user file {name} changed or vanished"


def _no_temps(root: Path):
    assert not [p for p in root.rglob("*") if ".partial." in p.name]


def test_user_files_survive_every_kind_of_run(tmp_path, capsys, monkeypatch):
    good = _frames(tmp_path / "good")
    bad = _frames(tmp_path / "bad", corrupt=3)
    videos = _user_folder(tmp_path)
    user = _snapshot(videos)

    # 1. without --overwrite: refused, nothing touched
    assert main(["upscale", str(good), "-o", f"{videos}/", *RUN]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert _snapshot(videos) == user

    # 2. with --overwrite, success: our frames added, every user file as it was
    assert main(["upscale", str(good), "-o", f"{videos}/", *RUN, "--overwrite"]) == 0
    _user_files_intact(videos, user)
    ours = sorted(p.name for p in videos.glob("frame_00000?.png"))
    assert ours == [f"frame_{i:06d}.png" for i in range(4)]
    after_success = _snapshot(videos)
    capsys.readouterr()

    # 3. with --overwrite, failing mid-run (frame 3 is damaged): the folder stays as it was
    assert main(["upscale", str(bad), "-o", f"{videos}/", *MID_RUN, "--overwrite"]) == 2
    assert "in_3.png" in capsys.readouterr().err
    assert _snapshot(videos) == after_success

    # 4. with --overwrite, interrupted (Ctrl-C while frame 3 is read)
    import uavrt.runtime.video.reader as reader
    real, calls = reader.read_image, []

    def interrupted(path):
        calls.append(path)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return real(path)
    monkeypatch.setattr(reader, "read_image", interrupted)
    assert main(["upscale", str(good), "-o", f"{videos}/", *MID_RUN, "--overwrite"]) == 130
    monkeypatch.setattr(reader, "read_image", real)
    assert _snapshot(videos) == after_success
    _no_temps(tmp_path)

    # 5. the input itself is never the output, not even with --overwrite
    clip = tmp_path / "clip.mp4"
    write_test_video(clip, frames=2, width=16, height=16, fps=Fraction(24))
    before = clip.read_bytes()
    assert main(["upscale", str(clip), "-o", str(clip), "--demo", "-q", "--overwrite"]) == 2
    assert clip.read_bytes() == before


def test_new_folder_with_trailing_slash_and_empty_folder(tmp_path):
    good = _frames(tmp_path / "good", n=2)
    assert main(["upscale", str(good), "-o", f"{tmp_path}/frames/", *RUN]) == 0  # created
    assert sorted(p.name for p in (tmp_path / "frames").iterdir()) == ["frame_000000.png", "frame_000001.png"]
    (tmp_path / "empty").mkdir()
    assert main(["upscale", str(good), "-o", str(tmp_path / "empty"), *RUN]) == 0  # an empty folder is filled
    assert len(list((tmp_path / "empty").iterdir())) == 2
    _no_temps(tmp_path)


def test_folder_of_videos_keeps_going_and_exits_nonzero(tmp_path, capsys):
    vids = tmp_path / "vids"
    vids.mkdir()
    for name in ("a.mp4", "c.mkv"):
        write_test_video(vids / name, frames=2, width=16, height=16, fps=Fraction(24))
    (vids / "b.mp4").write_text("a download that failed")
    out = tmp_path / "res"
    rc = main(["upscale", str(vids), "-o", str(out), "--demo", "--steps", "1", "-g", "1", "-q"])
    err = capsys.readouterr().err
    assert rc == 1
    assert sorted(p.name for p in out.iterdir()) == ["a.mp4", "c.mp4"]  # both readable ones were done
    assert "b.mp4" in err and "2 of 3" in err


def test_truncated_input_needs_allow_truncated(tmp_path, capsys):
    src = tmp_path / "long.mp4"
    write_test_video(src, frames=10, width=16, height=16, fps=Fraction(24), codec="libx264", pix_fmt="yuv420p",
                     container_options={"movflags": "+faststart"})
    data = src.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) * 9 // 10])
    out = tmp_path / "out.mp4"
    args = ["upscale", str(cut), "-o", str(out), "--demo", "--steps", "1", "-g", "1", "-q"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "truncated" in err and "lists 10" in err and "--allow-truncated" in err and not out.exists()
    assert main(args + ["--allow-truncated"]) == 0
    err = capsys.readouterr().err
    with open_frames(out) as r:
        n = sum(1 for _ in r)
    assert 0 < n < 10 and f"read {n} of the 10 frames" in err


def test_stale_temps_of_killed_runs_are_removed_live_ones_kept(tmp_path):
    from uavrt.fsutil import atomic_path
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    target = tmp_path / "out.mp4"
    stale = tmp_path / f".out.mp4.partial.{dead}.abcd1234.mp4"
    live = tmp_path / f".out.mp4.partial.{os.getppid()}.abcd1234.mp4"  # a running process's temp
    other = tmp_path / ".out.mp4.partial.notes"  # not our form: never touched
    neighbour = tmp_path / f".other.mp4.partial.{dead}.abcd1234.mp4"  # another target's
    for p in (stale, live, other, neighbour):
        p.write_bytes(b"x")
    with atomic_path(target) as tmp:
        tmp.write_bytes(b"video")
    assert not stale.exists() and live.exists() and other.exists() and neighbour.exists()
    assert target.read_bytes() == b"video"


def test_sighup_mid_run_keeps_user_files_and_removes_temps(tmp_path):
    src = tmp_path / "in.mp4"
    write_test_video(src, frames=24, width=16, height=16, fps=Fraction(24))
    videos = _user_folder(tmp_path)
    user = _snapshot(videos)
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    proc = subprocess.Popen([sys.executable, "-m", "uavrt", "upscale", str(src), "-o", f"{videos}/", "--demo",
                             "--steps", "3", "-q", "--overwrite", "--window", "4", "--window-overlap", "1"],
                            env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob(".Videos.partial.*")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)  # the temp folder appears once the model is loaded and work starts
    assert proc.poll() is None, "the run ended before it could be interrupted: " + proc.stderr.read()
    time.sleep(0.5)
    proc.send_signal(signal.SIGHUP)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGHUP, err
    assert "SIGHUP" in err and "Traceback" not in err
    assert _snapshot(videos) == user
    _no_temps(tmp_path)
