"""One command for the day a GPU is lent: check and measure the GPU paths, write ONE JSON.

    python benchmarks/gpu_acceptance.py --out benchmarks/results/gpu_acceptance_<card>.json
    python benchmarks/gpu_acceptance.py --smoke --device cpu --out /tmp/a.json   # CI: tiny, CPU parts

Needs only torch (CUDA build), numpy, safetensors; the kernel part also cuda-bindings + NVRTC.
No PyAV, ONNX Runtime, TensorRT or internet: what is absent is skipped, saying why. Sections:
  golden        every public golden case on the device in fp32, within the cases' tolerances
  fp16          the demo-model window in fp16 against fp32 (max/mean abs deviation of the frames)
  kernel        uavrt.kernels.selfcheck.gpu_check(): CUDA launch vs host build, speed vs torch
  unet          release-config U-Net (random weights), 8 frames x 64x64 latent, fp16, at 1/2/4 clips
                (batch 2/4/8 with guidance): ms per call, TFLOP/s, MFU vs the card's dense fp16 peak
  memory        planner prediction (fake trace) vs torch.cuda.max_memory_allocated on a demo window
  cuda_graph    capture + replay of the U-Net call (where torch offers graphs)
Target: under 8 minutes on an H100/H200 (the U-Net build and timing dominate).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
import traceback
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def _section(name, fn, report, *args):
    t0 = time.perf_counter()
    try:
        report[name] = fn(*args)
    except Exception as e:  # one broken part must not hide the others
        report[name] = {"status": "error", "error": f"{type(e).__name__}: {e}",
                        "traceback": traceback.format_exc()[-3000:]}
    report[name]["seconds"] = round(time.perf_counter() - t0, 2)
    print(f"[{name}] {report[name].get('status', 'ok')} in {report[name]['seconds']} s", file=sys.stderr)


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _median_ms(fn, device, warmup, iters):
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def golden(device, smoke):
    from uavrt.golden import Context, run_golden
    from uavrt.runtime.torch_backend import TorchBackend
    directory = REPO / "tests" / "data" / "golden"
    only = ["scheduler", "color"] if smoke else None  # smoke: the cheap kinds only
    results = run_golden(directory, Context(TorchBackend(device, "fp32")), only=only)
    failed = [r.line() for r in results if not r.passed]
    return {"status": "ok" if not failed else "failed", "tensors": len(results), "failed": failed,
            "precision": "fp32", "subset": "scheduler and colour cases (--smoke)" if smoke else "all public cases"}


def _demo_window(device, precision, frames=6, size=(32, 24)):
    import numpy as np
    from uavrt.config import BackendConfig, RunConfig, SamplerConfig
    from uavrt.models.demo import demo_weights_dir
    from uavrt.runtime.dryrun import _window
    from uavrt.runtime.upscaler import Upscaler
    cfg = RunConfig(sampler=SamplerConfig(steps=2))
    up = Upscaler.from_weights(demo_weights_dir(0, with_raft=False), cfg,
                               BackendConfig(device=str(device), precision=precision))
    up.conditioning()
    chunk = np.random.default_rng(0).integers(0, 256, (frames, size[1], size[0], 3), dtype=np.uint8)
    return cfg, up, chunk, _window


def fp16(device, smoke):
    if device.type != "cuda":
        return {"status": "skipped", "reason": "fp16 runs on CUDA only (the torch backend keeps CPU runs fp32)"}
    out = {}
    for p in ("fp32", "fp16"):
        _, up, chunk, window = _demo_window(device, p)
        out[p] = window(up, chunk).float()
    d = (out["fp16"] - out["fp32"]).abs()
    return {"status": "ok", "model": "demo (tiny, random weights)", "max_abs_uint8": float(d.max()),
            "mean_abs_uint8": float(d.mean())}


def kernel(device, smoke):
    if device.type != "cuda":
        return {"status": "skipped", "reason": "no CUDA device"}
    try:
        from uavrt.kernels.selfcheck import gpu_check
    except ImportError as e:
        return {"status": "skipped", "reason": f"uavrt.kernels.selfcheck unavailable: {e}"}
    try:
        import cuda.bindings  # noqa: F401
    except ImportError as e:
        return {"status": "skipped", "reason": f"cuda-bindings not installed: {e}"}
    r = gpu_check(str(device))
    r["status"] = "ok" if r.get("all_bit_exact", False) else "differs"
    return r


def unet(device, smoke):
    from torch.utils.flop_counter import FlopCounterMode
    from uavrt.bench.flops import gpu_peak_tflops
    from uavrt.models.demo import DEMO_UNET
    from uavrt.models.release import build_network, packaged_config
    from uavrt.spec import UNET
    config = DEMO_UNET if smoke else packaged_config("unet_video")
    precision = "fp16" if device.type == "cuda" else "fp32"
    dtype = torch.float16 if precision == "fp16" else torch.float32
    model = build_network("unet", config, device, dtype).eval()
    with torch.no_grad():  # uninitialised storage: give it finite values (timing does not care which)
        for p in model.parameters():
            p.normal_(0, 0.02)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    peak, basis = gpu_peak_tflops(name, precision, tf32=False) if device.type == "cuda" else (None, "cpu")
    size, frames = (16, 2) if smoke else (64, 8)
    rows = []
    for clips in ((1,) if smoke else (1, 2, 4)):
        b = 2 * clips  # [uncond, cond] per clip
        x = UNET.sample_inputs({"B": b, "T": frames, "H": size, "W": size, "L": 77,
                                "C": int(config["cross_attention_dim"])}, precision=precision, device=device)
        with FlopCounterMode(display=False) as fc, torch.inference_mode():
            model(**x)
        flops = fc.get_total_flops()
        with torch.inference_mode():
            ms = _median_ms(lambda: model(**x), device, 1 if smoke else 3, 2 if smoke else 10)
        tflops = flops / ms / 1e9
        rows.append({"clips": clips, "batch": b, "frames": frames, "latent": f"{size}x{size}", "ms_per_call": ms,
                     "tflop_per_call": flops / 1e12, "tflops": tflops, "mfu": tflops / peak if peak else None})
    return {"status": "ok", "device": name, "precision": precision, "peak_tflops": peak, "peak_basis": basis,
            "config": "demo (--smoke)" if smoke else "release unet_video.json, random weights", "rows": rows}


def memory(device, smoke):
    from uavrt.config import BackendConfig
    from uavrt.models.demo import DEMO_UNET, DEMO_VAE
    from uavrt.runtime.dryrun import dry_run
    from uavrt.runtime.fake import fake_cuda
    precision = "fp16" if device.type == "cuda" else "fp32"
    cfg, up, chunk, window = _demo_window(device, precision)
    T, h, w = chunk.shape[:3]
    with fake_cuda():
        pred = dry_run(cfg, BackendConfig(device=str(device), precision=precision), w, h, T, count_flops=False,
                       configs={"unet": DEMO_UNET, "vae_3d": DEMO_VAE["vae_3d"]}).memory.peak
    if device.type != "cuda":
        return {"status": "skipped", "reason": "max_memory_allocated needs CUDA", "predicted_bytes": pred}
    torch.cuda.synchronize(device)
    base = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    window(up, chunk)
    torch.cuda.synchronize(device)
    measured = torch.cuda.max_memory_allocated(device) - base
    return {"status": "ok", "model": "demo, 32x24, 6 frames", "predicted_bytes": pred, "measured_bytes": measured,
            "ratio": pred / measured if measured else None,
            "reserved_bytes": torch.cuda.memory_reserved(device)}


def cuda_graph(device, smoke):
    if device.type != "cuda":
        return {"status": "skipped", "reason": "CUDA graphs need a CUDA device"}
    from uavrt.models.demo import DEMO_UNET
    from uavrt.models.release import build_network
    from uavrt.spec import UNET
    model = build_network("unet", DEMO_UNET, device, torch.float16).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.02)
    x = UNET.sample_inputs({"B": 2, "T": 8, "H": 32, "W": 32, "L": 77, "C": DEMO_UNET["cross_attention_dim"]},
                           precision="fp16", device=device)
    with torch.inference_mode():
        s = torch.cuda.Stream(device)
        s.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(s):
            for _ in range(3):
                eager = model(**x)
        torch.cuda.current_stream(device).wait_stream(s)
        g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g):
            out = model(**x)
        g.replay()
        torch.cuda.synchronize(device)
        diff = float((out.float() - eager.float()).abs().max())
        eager_ms = _median_ms(lambda: model(**x), device, 3, 20)
        graph_ms = _median_ms(g.replay, device, 3, 20)
    return {"status": "ok", "model": "demo U-Net fp16, batch 2 x 8 x 32x32", "max_abs_diff_vs_eager": diff,
            "eager_ms": eager_ms, "graph_ms": graph_ms}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="the JSON to write")
    ap.add_argument("--device", default="cuda:0")
    ap.add_argument("--smoke", action="store_true", help="tiny configs (CI on a CPU)")
    a = ap.parse_args(argv)
    from uavrt.devices import resolve_device
    device = resolve_device(a.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("gpu_acceptance: no CUDA device (torch.cuda.is_available() is False); use --device cpu --smoke",
              file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    report = {"uavrt_acceptance": 1, "device": str(device), "smoke": a.smoke, "torch": torch.__version__,
              "cuda": torch.version.cuda, "host": platform.node(),
              "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None}
    for name, fn in (("golden", golden), ("fp16", fp16), ("kernel", kernel), ("unet", unet), ("memory", memory),
                     ("cuda_graph", cuda_graph)):
        _section(name, fn, report, device, a.smoke)
    report["seconds"] = round(time.perf_counter() - t0, 1)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".tmp")
    tmp.write_text(json.dumps(report, indent=1, default=str))
    os.replace(tmp, out)
    print(f"wrote {out} ({report['seconds']} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
