"""Long jobs: resume after SIGKILL, refusals of a changed job, damaged window files, previews of a
segment, JSON progress. All on the demo model, 1 step, 4-frame windows (>= 4 windows per clip)."""

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

import uavrt
from uavrt.commands import main
from uavrt.errors import ConfigError
from uavrt.runtime.files import OutputConfig, Segment, upscale_file
from uavrt.runtime.jobstate import JobState, default_job_dir, job_key
from uavrt.runtime.video.synth import write_test_video

N = 9  # frames; windows of 3 overlapping by 1: [0,3) [2,5) [4,7) [6,9)
RUN = ["--demo", "--steps", "1", "-g", "1", "--window", "3", "--window-overlap", "1", "--codec", "ffv1"]
ROOT = Path(uavrt.__file__).resolve().parent.parent


def _frames(path):
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def _audio(path):
    with av.open(str(path)) as c:
        return [(p.pts, bytes(p)) for p in c.demux(c.streams.audio[0]) if p.size]


def _same_frames(a, b):
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    p = tmp_path_factory.mktemp("in") / "clip.mkv"
    write_test_video(p, frames=N, width=16, height=16, fps=Fraction(25, 2), codec="ffv1", audio="aac")
    return p


@pytest.fixture(scope="module")
def up():
    """The model and settings of RUN, loaded once (the CLI runs below load their own)."""
    from uavrt.config import RunConfig, SamplerConfig, WindowConfig
    from uavrt.runtime.upscaler import Upscaler
    return Upscaler.demo(RunConfig(sampler=SamplerConfig(steps=1, guidance_scale=1.0), window=WindowConfig(3, 1)))


@pytest.fixture(scope="module")
def full(up, clip, tmp_path_factory):
    """The uninterrupted run (job state kept while it runs, removed on success)."""
    out = tmp_path_factory.mktemp("full") / "full.mkv"
    upscale_file(up, clip, out, OutputConfig(codec="ffv1"), resume="auto")
    assert not default_job_dir(out).exists()
    return out


def _crash_after(up, windows):
    """A local submit that dies when window number `windows` is submitted (an in-process crash)."""
    local, seen = up.local_submit(), []

    def submit(chunk, span, ff):
        if len(seen) == windows:
            raise RuntimeError("simulated crash")
        seen.append(span)
        return local(chunk, span, ff)
    return submit


def _crashed_job(up, clip, out, windows=3):  # of 4
    with pytest.raises(RuntimeError, match="simulated crash"):
        upscale_file(up, clip, out, OutputConfig(codec="ffv1"), submit=_crash_after(up, windows), resume="auto")
    job = default_job_dir(out)
    assert not out.exists() and len(list(job.glob("window_*.npz"))) == windows
    return job


def test_sigkill_then_resume_equals_the_uninterrupted_run(clip, full, tmp_path, capsys):
    out = tmp_path / "out.mkv"
    job = default_job_dir(out)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "uavrt", "upscale", str(clip), "-o", str(out), *RUN, "-q"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while len(list(job.glob("window_*.npz"))) < 2:
            assert proc.poll() is None, "the job ended before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(30)
    assert proc.returncode == -signal.SIGKILL
    assert not out.exists()
    done = len(list(job.glob("window_*.npz")))
    assert 2 <= done < 4
    assert main(["upscale", str(clip), "-o", str(out), *RUN, "--resume", "--progress", "json"]) == 0
    events = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    assert sum(e["event"] == "window_resumed" for e in events) == done  # not recomputed
    assert sum(e["event"] == "window_started" for e in events) == 4 - done
    assert _same_frames(_frames(out), _frames(full))
    assert _audio(out) == _audio(full) == _audio(clip)
    assert not job.exists()


def test_changed_setting_or_input_is_refused_naming_the_field(up, clip, tmp_path, capsys):
    src = tmp_path / "clip.mkv"
    src.write_bytes(clip.read_bytes())
    out = tmp_path / "out.mkv"
    job = _crashed_job(up, src, out)
    before = sorted(p.name for p in job.iterdir())
    assert main(["upscale", str(src), "-o", str(out), *RUN, "--seed", "11", "-q"]) == 2
    err = capsys.readouterr().err
    line = [x for x in err.splitlines() if "error" in x]
    assert len(line) == 1 and "run.sampler.seed=11" in line[0] and "10" in line[0] and "--restart" in line[0]
    st = src.stat()
    os.utime(src, ns=(1, 1))
    assert main(["upscale", str(src), "-o", str(out), *RUN, "-q"]) == 2
    assert "input.mtime_ns" in capsys.readouterr().err
    os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert sorted(p.name for p in job.iterdir()) == before and not out.exists()  # nothing touched
    up11 = up.with_config(dataclasses.replace(up.cfg, sampler=dataclasses.replace(up.cfg.sampler, seed=11)))
    with pytest.raises(ConfigError, match="run.sampler.seed"):  # the library refuses the same way
        upscale_file(up11, src, out, OutputConfig(codec="ffv1"), resume="auto")
    with JobState.open(job, job_key(src, up11.cfg, up11.info), mode="restart") as state:
        assert state.resumed == 0 and not list(job.glob("window_*"))  # --restart: the old windows are gone


def test_resume_without_a_job_is_refused(clip, tmp_path, capsys):
    assert main(["upscale", str(clip), "-o", str(tmp_path / "o.mkv"), *RUN, "-q", "--resume"]) == 2
    assert "--resume" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_damaged_window_files_are_computed_again(up, clip, full, tmp_path, caplog):
    out = tmp_path / "out.mkv"
    job = _crashed_job(up, clip, out)
    w = sorted(job.glob("window_*.npz"))
    w[0].write_bytes(w[0].read_bytes()[: w[0].stat().st_size // 2])  # half-written
    data = bytearray(w[1].read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte in the frames
    w[1].write_bytes(bytes(data))
    (job / ".window_000000006_000000010.abc.tmp").write_bytes(b"partial")  # a save that never finished
    events = []
    upscale_file(up, clip, out, OutputConfig(codec="ffv1"), progress=lambda k, d, t: events.append((k, d, t)),
                 resume="auto")
    assert _same_frames(_frames(out), _frames(full))
    assert [(d, t) for k, d, t in events if k == "window_resumed"] == [(4, 7)]
    assert sum(k == "window_started" for k, _, _ in events) == 3
    assert "computed again" in caplog.text and not job.exists()


def test_job_key_names_every_setting_and_the_model(up, clip):
    key = job_key(clip, up.cfg, up.info)
    assert key["run.sampler.seed"] == 10 and key["run.window.frames"] == 3 and key["run.unet_batch"] == 1
    assert len(key["model.unet_hash"]) == 64 and len(key["model.vae_hash"]) == 64
    assert key["uavrt_version"] == uavrt.__version__ and key["input.size"] == clip.stat().st_size
    with pytest.raises(ConfigError, match="segment.frames"):
        JobState._check(Path("j"), job_key(clip, up.cfg, up.info, Segment(frames=5)),
                        job_key(clip, up.cfg, up.info, Segment(frames=6)))


# --- preview a segment ---------------------------------------------------------------------------

def _segment_checks(out, clip):
    audio = _audio(out)
    assert audio and len(audio) < len(_audio(clip))  # cut to the segment
    src = {b for _, b in _audio(clip)}
    assert all(b in src for _, b in audio)  # copied packets, not re-encoded
    with av.open(str(out)) as c:
        a = c.streams.audio[0]
        assert float(max(p.pts for p in c.demux(a) if p.size) * a.time_base) < 5 / 12.5


def test_segment_on_window_boundaries_equals_the_full_run_inside(up, clip, full, tmp_path):
    # --start 2 is a full-run window start (stride 2); 5 frames = 3 + 1 * 2: windows [2,5) [4,7),
    # the full run's windows 1 and 2. Frames 3..5 (start+overlap .. end-overlap) must be identical.
    # 0.16 s is frame 2 at 12.5 fps (the CLI's `--start 0.16s`, parsed in tests/test_progress_json.py)
    out = tmp_path / "seg.mkv"
    upscale_file(up, clip, out, OutputConfig(codec="ffv1"), segment=Segment(start_s=Fraction("0.16"), frames=5))
    seg, ref = _frames(out), _frames(full)
    assert len(seg) == 5
    assert _same_frames(seg[1:4], ref[3:6])
    _segment_checks(out, clip)


def test_segment_from_the_start_equals_the_first_frames(up, clip, full, tmp_path):
    out = tmp_path / "seg.mkv"
    upscale_file(up, clip, out, OutputConfig(codec="ffv1"), segment=Segment(duration_s=Fraction("0.4")))
    seg = _frames(out)
    assert len(seg) == 5 and _same_frames(seg[:4], _frames(full)[:4])  # windows [0,3) [2,5); 4 = end - overlap
    _segment_checks(out, clip)


@pytest.mark.parametrize("flags,match", [
    (["--start", "999"], "start"),
    (["--start", "3", "--frames", "0"], "frames"),
    (["--frames", "2", "--duration", "1"], "frames/duration"),
    (["--start", "abc"], "--start"),
])
def test_bad_segments_are_refused(clip, tmp_path, capsys, flags, match):
    try:
        rc = main(["upscale", str(clip), "-o", str(tmp_path / "o.mkv"), *RUN, "-q", *flags])
    except SystemExit as e:  # argparse's own refusal of an unparsable value
        rc = e.code
    assert rc == 2 and match in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


# --- JSON progress -------------------------------------------------------------------------------

def test_json_progress_is_one_object_per_line(clip, tmp_path, capsys):
    out = tmp_path / "o.mkv"
    assert main(["upscale", str(clip), "-o", str(out), *RUN, "--frames", "5", "--progress", "json"]) == 0
    lines = capsys.readouterr().err.splitlines()
    events = [json.loads(line) for line in lines]  # every line parses
    kinds = [e["event"] for e in events]
    assert kinds[0] == "notice" and kinds[1] == "video" and events[1]["total"] == 5
    assert [(e["start"], e["stop"]) for e in events if e["event"] == "window_finished"] == [(0, 3), (2, 5)]
    assert sum(k == "step" for k in kinds) == 2
    written = [e for e in events if e["event"] == "written"]
    assert [e["done"] for e in written] == list(range(1, 6)) and written[-1]["eta_s"] == 0
    assert all(e["peak_rss_mb"] > 0 and e["t"] >= 0 for e in events)
