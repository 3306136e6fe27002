"""`uavrt plan` and `uavrt upscale --max-memory` at the command line."""

from __future__ import annotations

import pytest

from uavrt.commands import main
from uavrt.runtime.video.synth import write_test_video


def test_bad_max_memory_is_refused_before_any_work(tmp_path, capsys):
    src = tmp_path / "in.mkv"
    write_test_video(src, frames=2, width=32, height=24)
    rc = main(["upscale", str(src), "-o", str(tmp_path / "out.mp4"), "--demo", "--max-memory", "lots"])
    err = capsys.readouterr().err
    assert rc == 2 and "max_memory='lots'" in err and "Traceback" not in err
    assert not (tmp_path / "out.mp4").exists()


@pytest.mark.slow
def test_plan_854x480_fp16_cuda(tmp_path, capsys):
    """The release configs at 854x480 (traced on fake CUDA: a few minutes on 2 cores)."""
    src = tmp_path / "in.mkv"
    write_test_video(src, frames=9, width=854, height=480)
    assert main(["plan", str(src), "--device", "cuda", "--dtype", "fp16", "-s", "2", "-p", "0"]) == 0
    out = capsys.readouterr().out
    for line in ("input 854x480, 9 frames -> output 3416x1920; cuda:0 fp16", "tiles: 15 of 256x256",
                 "U-Net calls per step: 30", "predicted peak per stage", "vae_3d", "unet", "raft", "propagation",
                 "host<->device copies inside the step loop: 0"):
        assert line in out, out
