"""`uavrt plan`: windows, tiles, U-Net calls, FLOPs and predicted GPU memory of a run, without a GPU."""

from __future__ import annotations

import json
import sys

from ..errors import ConfigError
from .common import add_run_args, backend_config, run_config


def add_parser(sub):
    p = sub.add_parser("plan", help="plan a run and predict its GPU memory (no GPU needed)")
    p.add_argument("input", help="video file or image folder (its size and frame count are read)")
    g = p.add_argument_group("model")
    g.add_argument("--device", default="cuda", help="cuda | cuda:N | cpu (the device to plan for)")
    g.add_argument("--dtype", default="fp16", help="fp32 | fp16")
    g.add_argument("--vae", default="3d", help="3d | video")
    g.add_argument("--max-memory", default=None, help="pick the largest tile whose prediction fits, e.g. 24GB")
    g.add_argument("--json", action="store_true", help="print the plan as JSON")
    add_run_args(p)
    p.set_defaults(func=run, backend="torch", engines=None)


def input_shape(path) -> tuple:
    """(width, height, frames) of a video file or image folder."""
    from ..runtime.video.reader import FrameReader
    with FrameReader(path) as reader:
        info = reader.info
        frames = info.num_frames
        if frames is None:  # the container does not say (e.g. Matroska): count by decoding
            frames = sum(1 for _ in reader)
    if not frames:
        raise ConfigError("INPUT", str(path), "a video or image folder with at least one frame")
    return info.width, info.height, frames


def network_configs(weights=None, demo=False, vae="3d") -> dict | None:
    """The configs of the networks a run will load (None: the packaged release configs)."""
    if not (weights or demo):
        return None
    from ..models.release import network_config
    if demo:
        from ..models.demo import DEMO_UNET, DEMO_VAE
        return {"unet": DEMO_UNET, f"vae_{vae}": DEMO_VAE[f"vae_{vae}"]}
    return {n: network_config(weights, n) for n in ("unet", f"vae_{vae}")}


def fit_memory(cfg, backend, width, height, frames, max_memory, vae="3d", log=None, configs=None):
    """(RunConfig with the chosen tile, Prediction) for `--max-memory` (upscale and plan)."""
    from ..planner import fit_tile, parse_bytes
    budget = parse_bytes(max_memory)
    return fit_tile(cfg, backend, width, height, frames, budget, vae=vae, log=log, configs=configs)


def run(a) -> int:
    from ..planner import format_plan, predict
    cfg = run_config(a)
    backend = backend_config(a)
    width, height, frames = input_shape(a.input)
    if a.max_memory:
        cfg, p = fit_memory(cfg, backend, width, height, frames, a.max_memory, a.vae,
                            log=lambda m: print(f"uavrt plan: {m}", file=sys.stderr))
        print(f"uavrt plan: --max-memory {a.max_memory}: tile {p.tile or 'none'} fits", file=sys.stderr)
    else:
        p = predict(cfg, backend, width, height, frames, vae=a.vae)
    print(json.dumps(p.to_json(), indent=1) if a.json else format_plan(p))
    return 0
