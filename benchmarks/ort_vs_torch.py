"""CPU benchmark: ONNX Runtime (exported fp32 graph) vs PyTorch eager, per network.

Networks are built from the REAL release configs (uavrt/models/configs/*.json) with seeded
random weights (no checkpoint needed: speed does not depend on the values) and run at a small
shape each:
  unet       batch 2 (guidance), 8 frames, 32x32 latent, 77 text tokens
  vae_3d     1x4x3x32x32 latents -> 1x3x3x128x128
  vae_video  same + the low-res video condition
  raft       1 frame pair, 128x128, 20 iterations (the release count)
Both backends run through their Runners (the same validated entry point the pipeline uses).
Timing: warm-up runs, then the median of N wall-clock runs; export time is reported apart.
Results: a Markdown table on stdout, JSON + Markdown in benchmarks/results/.

    python benchmarks/ort_vs_torch.py [--networks unet,vae_3d,vae_video,raft] [--runs 3] [--threads N]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import time
from pathlib import Path

import torch

from uavrt.info import cpu_model

SHAPES = {
    "unet": {"B": 2, "T": 8, "H": 32, "W": 32, "L": 77},
    "vae_3d": {"B": 1, "T": 3, "H": 32, "W": 32},
    "vae_video": {"B": 1, "T": 3, "H": 32, "W": 32},
    "raft": {"N": 1, "H": 128, "W": 128},
}
CONFIG_FILES = {"unet": "unet_video", "vae_3d": "vae_3d", "vae_video": "vae_video", "raft": "raft_things"}


def timed(fn, warmup: int, runs: int) -> list:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return times


def bench_network(name: str, warmup: int, runs: int, threads: int | None) -> dict:
    from uavrt.spec import SPECS
    from uavrt.models.release import build_network, packaged_config
    from uavrt.runtime.ort_backend import OrtBackend
    from uavrt.runtime.torch_backend import TorchBackend

    spec = SPECS[name]
    config = packaged_config(CONFIG_FILES[name])
    torch.manual_seed(0)
    module = build_network(name, config).eval()
    params = sum(p.numel() for p in module.parameters())
    dims = spec.example_dims(config, **SHAPES[name])
    inputs = spec.sample_inputs(dims, seed=0)
    shapes = {k: list(v.shape) for k, v in inputs.items()}

    torch_runner = TorchBackend("cpu", "fp32").from_module(spec, module)
    t_torch = timed(lambda: torch_runner(**inputs), warmup, runs)
    ref = torch_runner(**inputs)

    t0 = time.perf_counter()
    ort_runner = OrtBackend(threads=threads).from_module(spec, module)
    export_s = time.perf_counter() - t0
    t_ort = timed(lambda: ort_runner(**inputs), warmup, runs)
    got = ort_runner(**inputs)
    rel = max(float((got[k] - ref[k]).abs().max() / ref[k].abs().max().clamp_min(1e-12)) for k in ref)
    return {"network": name, "params": params, "inputs": shapes, "export_s": round(export_s, 1),
            "torch_ms": [round(1e3 * t, 2) for t in t_torch], "ort_ms": [round(1e3 * t, 2) for t in t_ort],
            "torch_median_ms": round(1e3 * statistics.median(t_torch), 2),
            "ort_median_ms": round(1e3 * statistics.median(t_ort), 2),
            "speedup_ort_over_torch": round(statistics.median(t_torch) / statistics.median(t_ort), 3),
            "max_rel_diff": rel}


def markdown(results: list, env: dict) -> str:
    lines = [(f"ORT vs PyTorch, CPU fp32 - {env['cpu']} ({env['threads']} threads), torch {env['torch']}, "
              f"onnxruntime {env['onnxruntime']}, median of {env['runs']} after {env['warmup']} warm-up"),
             "", "| network | inputs | torch ms | ORT ms | torch/ORT | export s | max rel diff |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    for r in results:
        ins = ", ".join("x".join(map(str, s)) or "scalar" for s in r["inputs"].values())
        lines.append(f"| {r['network']} | {ins} | {r['torch_median_ms']:.1f} | {r['ort_median_ms']:.1f} | "
                     f"{r['speedup_ort_over_torch']:.2f} | {r['export_s']:.0f} | {r['max_rel_diff']:.1e} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--networks", default="unet,vae_3d,vae_video,raft")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--runs", type=int, default=3, help="timed runs; the median is reported")
    p.add_argument("--threads", type=int, default=None, help="threads for both (default: all cores)")
    p.add_argument("--out", default=str(Path(__file__).parent / "results"))
    a = p.parse_args(argv)
    import onnxruntime

    if a.threads:
        torch.set_num_threads(a.threads)
    env = {"cpu": cpu_model(), "threads": a.threads or torch.get_num_threads(), "torch": torch.__version__,
           "onnxruntime": onnxruntime.__version__, "runs": a.runs, "warmup": a.warmup,
           "date": dt.datetime.now().isoformat(timespec="seconds")}
    results = []
    for name in a.networks.split(","):
        print(f"{name} ...", flush=True)
        results.append(bench_network(name.strip(), a.warmup, a.runs, a.threads))
        print(json.dumps(results[-1]), flush=True)
    table = markdown(results, env)
    print(table)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    (out / f"ort_vs_torch-{stamp}.json").write_text(json.dumps({"env": env, "results": results}, indent=1))
    (out / f"ort_vs_torch-{stamp}.md").write_text(table)


if __name__ == "__main__":
    main()
