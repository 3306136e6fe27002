"""The GPU acceptance script's CPU-possible parts, with tiny configs (`--smoke --device cpu`)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_acceptance_smoke_on_cpu(tmp_path):
    out = tmp_path / "acceptance.json"
    res = subprocess.run([sys.executable, str(REPO / "benchmarks" / "gpu_acceptance.py"), "--smoke", "--device", "cpu",
                          "--out", str(out)], capture_output=True, text=True, timeout=600, cwd=REPO)
    assert res.returncode == 0, res.stderr[-3000:]
    r = json.loads(out.read_text())
    assert r["golden"]["status"] == "ok" and r["golden"]["tensors"] > 0, r["golden"]
    assert r["unet"]["status"] == "ok" and r["unet"]["rows"][0]["ms_per_call"] > 0, r["unet"]
    assert r["memory"]["status"] == "skipped" and r["memory"]["predicted_bytes"] > 0, r["memory"]
    for gpu_only in ("fp16", "kernel", "cuda_graph"):
        assert r[gpu_only]["status"] == "skipped" and r[gpu_only]["reason"], r[gpu_only]


def test_acceptance_refuses_cuda_without_a_gpu(tmp_path):
    res = subprocess.run([sys.executable, str(REPO / "benchmarks" / "gpu_acceptance.py"), "--out", str(tmp_path / "a.json")],
                         capture_output=True, text=True, timeout=300, cwd=REPO)
    import torch
    if not torch.cuda.is_available():
        assert res.returncode == 2 and "no CUDA device" in res.stderr
