"""Measure one scenario on one loaded upscaler: warm-up, N timed runs, one summary dict.

A run is what `uavrt upscale` does for one video: open the input, stream its frames through
`Upscaler.stream` (windows, text encoding, RAFT, U-Net steps, propagation, VAE decode), encode
the output. With io "memory" the frames come from and go to RAM instead (no codec cost).
Warm-up runs (first call, lazy exports/compilation, allocator growth) are excluded.
"""

from __future__ import annotations

import gc
import os
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import BackendUnavailable, ConfigError
from .clock import STAGES, StageClock, TimedFrames, make_sync, timed_upscaler
from .flops import UNetFlops, gpu_peak_tflops, propagation_bytes, tf32_enabled
from .memory import PeakMemory
from .scenario import Scenario

RANDOM_NOTE = "random weights (release architecture): timings are real, the output is not an upscale"
DEMO_NOTE = ("tiny demo model (~1 M parameters, trained on synthetic video): timings show the pipeline, "
             "not the release model's cost")


@dataclass(frozen=True)
class ModelSource:
    kind: str  # "demo" | "weights" | "random"
    path: str | None = None
    seed: int = 0

    def describe(self) -> dict:
        note = {"demo": DEMO_NOTE, "random": RANDOM_NOTE, "weights": "release weights"}[self.kind]
        return {"source": {"random": "random-weights"}.get(self.kind, self.kind), "path": self.path, "note": note}


def load_upscaler(source: ModelSource, backend: str, device: str, precision: str, vae: str, with_raft: bool,
                  engines: str | None = None):
    """(Upscaler, seconds to load). Missing backends raise BackendUnavailable naming the cause."""
    from ..config import RunConfig, SamplerConfig
    from ..config import BackendConfig
    from ..runtime.upscaler import Upscaler
    cfg = RunConfig(sampler=SamplerConfig(propagation_steps=(0,) if with_raft else ()))  # loads RAFT iff asked
    bcfg = BackendConfig(backend=backend, device=device, precision=precision, engines=engines)
    t0 = time.perf_counter()
    try:
        if source.kind == "demo":
            up = Upscaler.demo(cfg, bcfg, vae=vae, seed=source.seed)
        else:
            path = source.path
            if source.kind == "random":
                from .weights import random_release_dir
                path = random_release_dir(source.seed)
            up = Upscaler.from_weights(path, cfg, bcfg, vae=vae)
    except ImportError as e:  # an optional package (or backend module) is missing
        raise BackendUnavailable(f"backend {backend!r} cannot be used here: {type(e).__name__}: {e}") from e
    return up, time.perf_counter() - t0


def stats(values: list) -> dict:
    return {"median_s": statistics.median(values), "min_s": min(values), "max_s": max(values)}


class InputVideos:
    """Synthetic input videos (libx264, yuv420p, 10 fps), written once per size in a temp dir."""

    def __init__(self):
        self._dir = tempfile.TemporaryDirectory(prefix="uavrt-bench-")
        self.root = Path(self._dir.name)
        self._made: dict = {}

    def get(self, frames: int, height: int, width: int) -> Path:
        key = (frames, height, width)
        if key not in self._made:
            from ..runtime.video.synth import write_test_video
            path = self.root / f"in_{width}x{height}_{frames}.mp4"
            write_test_video(path, frames=frames, width=width, height=height, codec="libx264", pix_fmt="yuv420p")
            self._made[key] = path
        return self._made[key]

    def frames(self, frames: int, height: int, width: int) -> list:
        from ..runtime.video.synth import pattern_frame
        return [pattern_frame(i, width, height) for i in range(frames)]

    def close(self):
        self._dir.cleanup()


def run_once(upscaler, scenario: Scenario, clock: StageClock, source) -> float:
    """One measured run; returns its wall time. `source`: input video path or list of frames."""
    up = timed_upscaler(upscaler, clock)
    t0 = time.perf_counter()
    if scenario.io == "memory":
        n = sum(1 for _ in up.stream(source))
    else:
        n = _run_file(up, source, clock, scenario.codec)
    clock.sync()
    wall = time.perf_counter() - t0
    if n != scenario.frames:
        raise RuntimeError(f"bench: {n} frames came out of {scenario.frames}")
    return wall


def _run_file(up, src: Path, clock: StageClock, codec: str) -> int:
    from ..runtime.video import VideoWriter, open_frames
    dst = src.with_name("out_" + src.name)
    pts: list = []
    with clock.timed("video_decode", open_frames, src) as reader:  # opening decodes the first frame
        info = reader.info
        writer = clock.timed("video_encode", VideoWriter, dst, fps=info.fps, time_base=info.time_base, codec=codec,
                             overwrite=True)
        n = 0
        try:
            for frame in up.stream(TimedFrames(reader, clock, pts), eager=False):  # as upscale_file
                clock.timed("video_encode", writer.write, frame, pts[n])
                n += 1
            clock.timed("video_encode", writer.close)  # flushes the encoder
        except BaseException:
            writer.abort()
            raise
    return n


def measure(upscaler, scenario: Scenario, *, backend: str, inputs: InputVideos, reps: int = 3, warmup: int = 1,
            unet_flops: UNetFlops | None = None, peak_tflops: float | None = None) -> dict:
    """Warm up, then `reps` timed runs of `scenario`; the result dict (see report.SCHEMA)."""
    if reps < 1:
        raise ConfigError("reps", reps, "an integer >= 1")
    device = upscaler.model.device
    up = upscaler.with_config(scenario.run_config())
    source = (inputs.frames if scenario.io == "memory" else inputs.get)(scenario.frames, scenario.height,
                                                                         scenario.width)
    clock = StageClock(make_sync(device))
    for _ in range(warmup):
        clock.reset()
        run_once(up, scenario, clock, source)
    walls, cpus, per_rep = [], [], []
    gc.collect()
    load_before = _load()
    with PeakMemory(device, torch_allocator=(backend == "torch")) as mem:
        for _ in range(reps):
            clock.reset()
            cpu0 = time.process_time()
            walls.append(run_once(up, scenario, clock, source))
            cpus.append(time.process_time() - cpu0)
            per_rep.append((dict(clock.seconds), dict(clock.calls)))
    unet_shapes, prop_shapes = list(clock.unet_shapes), list(clock.prop_shapes)  # same in every run

    names = [s for s in STAGES if any(s in c for _, c in per_rep)]
    stages = {}
    for s in names:
        st = stats([sec.get(s, 0.0) for sec, _ in per_rep])
        st["calls"] = per_rep[-1][1].get(s, 0)
        stages[s] = st
    wall = stats(walls)
    covered = sum(st["median_s"] for st in stages.values())
    result = {
        "backend": backend, "status": "ok", "device": str(device), "precision": scenario.precision,
        "scenario": scenario.to_json(), "label": scenario.label(), "reps": reps, "warmup": warmup,
        "wall_s": wall, "stages": stages,
        "unaccounted_s": {"median_s": wall["median_s"] - covered,
                          "fraction": (wall["median_s"] - covered) / wall["median_s"]},
        "fps": scenario.frames / wall["median_s"], "s_per_frame": wall["median_s"] / scenario.frames,
        **mem.result(),
        # CPU seconds of this process (all threads) per wall second: well below the thread count
        # while the load average exceeds the cores means other processes took the CPU
        "process_cpu_s": stats(cpus), "cpu_per_wall": statistics.median(c / w for c, w in zip(cpus, walls)),
        "host_load_1m": {"before": load_before, "after": _load()},
    }
    result["per_unit"] = _per_unit(stages, scenario, per_rep)
    result.update(_efficiency(stages, unet_shapes, prop_shapes, unet_flops, device, scenario.precision, peak_tflops))
    return result


def _load():
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None


def _per_unit(stages: dict, scenario: Scenario, per_rep) -> dict:
    """Stage times per natural unit: U-Net per denoising step and per call, VAE per frame."""
    out = {}
    if "unet" in stages:
        out["unet_per_step"] = {k: v / scenario.steps for k, v in stages["unet"].items() if k.endswith("_s")}
        calls = max(stages["unet"]["calls"], 1)
        out["unet_per_call"] = {k: v / calls for k, v in stages["unet"].items() if k.endswith("_s")}
    if "propagation" in stages:
        calls = max(stages["propagation"]["calls"], 1)
        out["propagation_per_call"] = {k: v / calls for k, v in stages["propagation"].items() if k.endswith("_s")}
    if "vae_decode" in stages:
        out["vae_decode_per_frame"] = {k: v / scenario.frames for k, v in stages["vae_decode"].items()
                                       if k.endswith("_s")}
    return out


def _efficiency(stages, unet_shapes, prop_shapes, unet_flops, device, precision, peak_tflops) -> dict:
    out = {"unet_calls_per_run": len(unet_shapes), "unet_flops_per_call": None, "unet_flops_per_run": None,
           "achieved_tflops": None, "peak_tflops": None, "peak_basis": None, "mfu": None, "mfu_why": None,
           "propagation_bytes_per_run": None, "propagation_gbps": None, "propagation_why": None}
    if unet_flops is not None and unet_shapes:
        per_run = sum(unet_flops.per_call(*s) for s in unet_shapes)
        out["unet_flops_per_run"] = per_run
        out["unet_flops_per_call"] = per_run // len(unet_shapes)  # mean (clip/tile shapes can differ)
        out["unet_call_shapes"] = sorted({str(list(s)) for s in unet_shapes})
        out["achieved_tflops"] = per_run / stages["unet"]["median_s"] / 1e12
    elif unet_flops is None:
        out["mfu_why"] = "U-Net FLOPs not counted (--no-flops)"
    if peak_tflops:
        out["peak_tflops"], out["peak_basis"] = float(peak_tflops), "--peak-tflops"
    elif device.type == "cuda":
        out["peak_tflops"], out["peak_basis"] = gpu_peak_tflops(torch.cuda.get_device_name(device), precision,
                                                                tf32_enabled())
        if out["peak_tflops"] is None:
            out["mfu_why"], out["peak_basis"] = out["peak_basis"], None
    else:
        out["mfu_why"] = ("CPU run: there is no peak table for CPUs (their peak depends on SIMD width, "
                          "cores and clocks); pass --peak-tflops to get an MFU")
    if out["peak_tflops"] and out["achieved_tflops"] is not None:
        out["mfu"] = out["achieved_tflops"] / out["peak_tflops"]
    if prop_shapes:
        total = sum(propagation_bytes(shape, dtype) for shape, dtype in prop_shapes)
        out["propagation_bytes_per_run"] = total
        out["propagation_gbps"] = total / stages["propagation"]["median_s"] / 1e9
    else:
        out["propagation_why"] = "no propagation in this scenario (propagation steps off or 1-frame windows)"
    return out
