"""`uavrt bench` on a GPU and with the release-size random weights (skipped where unavailable)."""

import json

import pytest
import torch

from uavrt.commands.bench import main
from uavrt.bench.flops import UNetFlops
from uavrt.models.release import packaged_config


@pytest.mark.gpu
def test_gpu_fields(tmp_path):
    out = tmp_path / "r.jsonl"
    assert main(["--demo", "--device", "cuda", "--size", "32x32", "--frames", "8", "--steps", "2", "--reps", "2",
                 "--peak-tflops", "100", "--json", str(out), "-q"]) == 0
    r = json.loads(out.read_text().splitlines()[0])
    assert r["env"]["gpu"] == torch.cuda.get_device_name(0)
    assert r["peak_gpu_mb"] > 0 and r["peak_gpu_source"] == "torch.cuda.max_memory_allocated"
    assert r["mfu"] == pytest.approx(r["achieved_tflops"] / 100)
    covered = sum(s["median_s"] for s in r["stages"].values())
    assert covered == pytest.approx(r["wall_s"]["median_s"], rel=0.10)


@pytest.mark.slow
def test_random_release_weights(tmp_path):
    """The release architecture (writes ~2.2 GB of random weights to the uavrt cache once)."""
    out = tmp_path / "r.jsonl"
    assert main(["--random-weights", "--size", "16x16", "--frames", "2", "--steps", "1", "--guidance", "1",
                 "--io", "memory", "--reps", "1", "--warmup", "0", "--json", str(out), "-q"]) == 0
    r = json.loads(out.read_text().splitlines()[0])
    assert r["model"]["source"] == "random-weights" and "not an upscale" in r["model"]["note"]
    assert r["unet_flops_per_call"] == UNetFlops(packaged_config("unet_video")).per_call(1, 2, 16, 16)
    assert r["unet_flops_per_call"] > 5e10  # ~1/32 of the 1.77 TFLOP at batch 2, 8 frames, 32x32
