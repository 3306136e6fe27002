"""GPU memory and work of a run, predicted on any machine from the fake-CUDA trace of one window.

`predict(cfg, backend, width, height, num_frames)` traces one window of the release networks
(uavrt.runtime.dryrun) at the run's real sizes and returns the plan: windows, clips, tiles, U-Net
calls per step, FLOPs per output frame, live-memory peaks per stage, the weights, and the margin
for what the trace cannot see. `fit_tile(...)` picks the largest tile whose prediction fits a
memory budget (`upscale --max-memory`), or refuses naming the stage and the bytes.

The trace runs min(steps, 2) DDIM steps (propagation at the first when the run propagates): every
step has the same shapes, so peaks do not depend on the step count and the U-Net's FLOPs scale
linearly with it.
"""

from __future__ import annotations

import contextlib
import functools
import re
from dataclasses import dataclass, replace

from .config import BackendConfig, RunConfig
from .errors import ConfigError

GiB = 1 << 30
# Not in the trace, added on top of the prediction (starting values, see LEFT_OUT; the GPU
# acceptance script measures allocated vs predicted and reserved vs allocated):
CONTEXT_BYTES = 1 * GiB  # CUDA context + cuBLAS/cuDNN handles and workspaces (H100: ~0.5 GB context)
SLACK = 0.10  # caching-allocator fragmentation and block rounding, as a fraction of the peak
LEFT_OUT = (
    "CUDA context and library handles (cuBLAS, cuDNN): outside torch's allocator",
    "cuDNN/cuBLAS/TensorRT workspaces and kernels' scratch (convolution algorithms choose them at run time)",
    "caching-allocator fragmentation (reserved > allocated) beyond the 512-byte rounding the trace applies",
    "attention is traced as flash / memory-efficient attention by torch's selection rules, not the kernel a GPU picks",
    "the text tower's activations (it runs once per prompt, before the window)",
)
STAGES = ("window", "raft", "unet", "propagation", "vae")
# --max-memory candidates, largest first (low-res pixels; the overlap stays <= half the tile)
TILE_CANDIDATES = (512, 448, 384, 320, 256, 192, 160, 128, 96, 64)
# the release's text tower (SD x4 upscaler: OpenCLIP ViT-H/14 text, CLIPTextModel layout)
TEXT_CONFIG = dict(vocab_size=49408, hidden_size=1024, intermediate_size=4096, num_hidden_layers=23,
                   num_attention_heads=16, max_position_embeddings=77, hidden_act="gelu")


def parse_bytes(text) -> int:
    """'24GB', '24 GiB', '1.5G', '800MB', 24e9 -> bytes (GB = GiB = 2**30, as nvidia-smi reports)."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        value = float(text)
    else:
        m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([KMGT]?)(i?B)?\s*", str(text), re.IGNORECASE)
        if not m:
            raise ConfigError("max_memory", text, "a size like 24GB, 80GiB or 1500MB")
        value = float(m.group(1)) * {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}[m.group(2).upper()]
    if value <= 0:
        raise ConfigError("max_memory", text, "a positive size")
    return int(value)


@functools.cache
def text_tower_params() -> int | None:
    """Parameters of the release's text tower (built on meta by transformers), None without it."""
    try:
        import torch
        from transformers import CLIPTextConfig, CLIPTextModel
    except ImportError:
        return None
    with torch.device("meta"):
        model = CLIPTextModel(CLIPTextConfig(**TEXT_CONFIG))
    return sum(p.numel() for p in model.parameters())


@dataclass(frozen=True)
class StagePrediction:
    name: str
    activations: int  # peak live bytes of the trace while this stage ran (window buffers included)
    predicted: int  # weights + activations + slack + context


@dataclass(frozen=True)
class Prediction:
    device: str
    precision: str
    size: tuple  # (width, height) low-res
    out_size: tuple
    num_frames: int
    windows: int
    window_frames: int
    clips: int
    tile: int | None
    tiles: int
    tile_mode: str
    unet_calls_per_step: int
    steps: int
    flops_per_frame: float
    flops: dict  # network -> FLOPs per window
    weights: dict  # network -> bytes
    stages: tuple  # StagePrediction, in STAGES order
    peak: int  # max over stages of `predicted`
    trace_seconds: float
    transfers_in_loop: int

    @property
    def worst(self) -> StagePrediction:
        return max(self.stages, key=lambda s: s.predicted)

    def to_json(self) -> dict:
        d = {k: getattr(self, k) for k in ("device", "precision", "num_frames", "windows", "window_frames", "clips",
                                           "tile", "tiles", "tile_mode", "unet_calls_per_step", "steps",
                                           "flops_per_frame", "flops", "weights", "peak", "trace_seconds",
                                           "transfers_in_loop")}
        d["size"], d["out_size"] = list(self.size), list(self.out_size)
        d["stages"] = {s.name: {"activations_bytes": s.activations, "predicted_bytes": s.predicted}
                       for s in self.stages}
        d["margin"] = {"context_bytes": CONTEXT_BYTES, "slack_fraction": SLACK}
        d["left_out"] = list(LEFT_OUT)
        return d


def _trace_config(cfg: RunConfig) -> RunConfig:
    s = cfg.sampler
    steps = min(s.steps, 2)
    return replace(cfg, sampler=replace(s, steps=steps, propagation_steps=(0,) if s.propagation_steps else ()))


def predict(cfg: RunConfig, backend: BackendConfig, width: int, height: int, num_frames: int, *,
            vae: str = "3d", configs: dict | None = None, cache: dict | None = None) -> Prediction:
    """The plan and predicted peak memory of upscaling `num_frames` frames of width x height.
    With `cache` the caller is inside `fake_cuda()` and shares built networks across predictions."""
    from .devices import resolve_device
    from .runtime.dryrun import dry_run
    from .runtime.fake import fake_cuda
    from .runtime.plan import clip_spans, window_spans

    if num_frames < 1:
        raise ConfigError("num_frames", num_frames, "at least 1")
    device = resolve_device(backend.device)
    T = min(num_frames, cfg.window.frames)
    windows = window_spans(num_frames, cfg.window.frames, cfg.window.overlap) if num_frames > T else [None]
    tcfg = _trace_config(cfg)
    with (contextlib.nullcontext() if cache is not None else fake_cuda()):
        run = dry_run(tcfg, replace(backend, device=str(device)), width, height, T, vae=vae, configs=configs,
                      cache=cache)
    trace_steps = tcfg.sampler.steps
    nets = run.networks
    unet = nets["unet"]
    per_step_calls = unet.calls // trace_steps
    flops = {"unet": unet.flops / trace_steps * cfg.sampler.steps}
    for name, cost in nets.items():
        if name != "unet":
            flops[name] = float(cost.flops)
    weights = {name: cost.weights_bytes for name, cost in nets.items()}
    text = text_tower_params()
    if text is not None:
        text_fp16 = backend.precision == "fp16" and device.type == "cuda"  # as the Upscaler loads it
        weights["text_encoder"] = text * (2 if text_fp16 else 4)
    total_weights = sum(weights.values())
    stages = []
    for name in STAGES:
        key = next((k for k in run.memory.stages if k == name or k.startswith(name + "_")), None)
        if key is None:
            continue
        act = run.memory.stages[key].peak
        stages.append(StagePrediction(key, act, int(total_weights + act * (1 + SLACK) + CONTEXT_BYTES)))
    h, w = height, width
    tile = run.tile
    from .runtime.plan import plan_tiles, release_tiles
    if tile is None:
        n_tiles = 1
    elif cfg.tiles.mode == "release":
        n_tiles = len(release_tiles(h, w, tile, cfg.tiles.overlap))
    else:
        n_tiles = len(plan_tiles(h, w, tile, min(cfg.tiles.overlap, tile // 2)))
    per_window = sum(flops.values())
    return Prediction(
        device=str(device), precision=backend.precision, size=(width, height), out_size=(4 * width, 4 * height),
        num_frames=num_frames, windows=len(windows), window_frames=T, clips=len(clip_spans(T, cfg.clips.length,
                                                                                             cfg.clips.overlap)),
        tile=tile, tiles=n_tiles, tile_mode=cfg.tiles.mode, unet_calls_per_step=per_step_calls,
        steps=cfg.sampler.steps, flops_per_frame=per_window * len(windows) / num_frames, flops=flops,
        weights=weights, stages=tuple(stages), peak=max(s.predicted for s in stages),
        trace_seconds=run.seconds, transfers_in_loop=len(run.loop_transfers))


def fit_tile(cfg: RunConfig, backend: BackendConfig, width: int, height: int, num_frames: int, max_bytes: int, *,
             vae: str = "3d", configs: dict | None = None, log=None) -> tuple:
    """(RunConfig, Prediction) with the largest tile whose predicted peak fits `max_bytes`.

    A tile given in `cfg` is kept and only checked. The frame untiled is tried first when the
    run would not tile it anyway. Nothing fits -> ConfigError naming the stage and the bytes."""
    if cfg.tiles.size is not None:
        candidates = [cfg]
    else:
        candidates = [cfg] + [replace(cfg, tiles=replace(cfg.tiles, size=t, overlap=min(cfg.tiles.overlap, t // 2)))
                              for t in TILE_CANDIDATES if t < max(width, height)]
    from .runtime.fake import fake_cuda
    best, cache = None, {}
    with fake_cuda():
        for c in candidates:
            p = predict(c, backend, width, height, num_frames, vae=vae, configs=configs, cache=cache)
            if log:
                log(f"tile {p.tile or 'none'}: predicted peak {p.peak / GiB:.2f} GiB ({p.worst.name})")
            if p.peak <= max_bytes:
                return c, p
            if best is None or p.peak < best[1].peak:
                best = (c, p)
    p = best[1]
    s = p.worst
    raise ConfigError("max_memory", f"{max_bytes / GiB:.2f} GiB",
                      f"at least {s.predicted / GiB:.2f} GiB: stage {s.name!r} needs {s.predicted} bytes "
                      f"(weights {sum(p.weights.values())} + activations {s.activations} + margin) at tile "
                      f"{p.tile or 'none'}, the smallest that was tried")


def format_plan(p: Prediction) -> str:
    def gb(n):
        return f"{n / GiB:7.2f} GiB"
    lines = [
        f"input {p.size[0]}x{p.size[1]}, {p.num_frames} frames -> output {p.out_size[0]}x{p.out_size[1]}; "
        f"{p.device} {p.precision}",
        f"windows: {p.windows} of {p.window_frames} frames; clips per window: {p.clips}",
        f"tiles: {p.tiles}" + (f" of {p.tile}x{p.tile} ({p.tile_mode})" if p.tile else " (frame untiled)"),
        f"U-Net calls per step: {p.unet_calls_per_step} (x {p.steps} steps per window)",
        f"FLOPs per output frame: {p.flops_per_frame / 1e12:.1f} TFLOP "
        f"(" + ", ".join(f"{k} {v / 1e12:.1f}" for k, v in p.flops.items()) + " TFLOP per window)",
        "weights: " + ", ".join(f"{k} {v / GiB:.2f}" for k, v in p.weights.items()) + " GiB",
        "predicted peak per stage (weights + live tensors x (1 + slack) + context):",
    ]
    for s in p.stages:
        lines.append(f"  {s.name:<12} {gb(s.predicted)}   (live tensors {s.activations / GiB:.2f} GiB)")
    lines.append(f"peak: {gb(p.peak).strip()} in {p.worst.name}; margin added: {CONTEXT_BYTES / GiB:.0f} GiB "
                 f"context + {SLACK:.0%} allocator slack")
    lines.append("not in the trace: " + "; ".join(LEFT_OUT))
    lines.append(f"host<->device copies inside the step loop: {p.transfers_in_loop}; traced in {p.trace_seconds:.0f} s")
    return "\n".join(lines)
