"""`uavrt upscale`: a video, an image folder or a folder of videos -> x4."""

from __future__ import annotations

import sys
from fractions import Fraction
from pathlib import Path

from ..errors import ConfigError
from .common import JsonProgress, Progress, add_model_args, add_run_args, backend_config, build_upscaler, run_config


def add_parser(sub):
    u = sub.add_parser("upscale", help="upscale a video (x4)")
    u.add_argument("input", help="video file, image folder, or folder of videos")
    u.add_argument("-o", "--output", required=True, help="output video (or folder when INPUT holds videos)")
    u.add_argument("--overwrite", action="store_true")
    u.add_argument("--codec", default="libx264", help="libx264 | libx265 | ffv1 | prores_ks | libx264rgb")
    u.add_argument("--crf", type=int, default=None)
    u.add_argument("--fps", type=Fraction, default=None, help="frame rate for image-folder inputs (default 30)")
    u.add_argument("-q", "--quiet", action="store_true")
    u.add_argument("--json-progress", action="store_true", help="one JSON object per progress event on stderr")
    r = u.add_argument_group("many GPUs and machines (Ray)")
    r.add_argument("--ray", nargs="?", const="local", default=None, metavar="ADDRESS",
                   help="run the windows on Ray workers: no ADDRESS starts a local cluster; 'auto' or HOST:PORT "
                        "joins one started with `ray start --head` (put --ray after INPUT)")
    r.add_argument("--workers", type=int, default=None,
                   help="Ray workers (default: one per GPU of the cluster, or one per CPU on a CPU cluster)")
    r.add_argument("--ray-frames", default="ship", help="ship (driver sends the frames) | shared (workers read the "
                                                         "input from the same path, a shared filesystem)")
    add_model_args(u)
    add_run_args(u)
    u.set_defaults(func=run)


def run(a) -> int:
    from ..fsutil import check_writable
    from ..runtime.files import OutputConfig, list_inputs, upscale_file
    from ..runtime.video import is_folder_target
    cfg = run_config(a)
    inputs = list_inputs(a.input)
    if not inputs[0].exists():
        raise ConfigError("INPUT", str(a.input), "an existing video file, image folder or folder of videos")
    out = Path(a.output)
    jobs = [(src, out / f"{src.stem}.mp4") for src in inputs] if len(inputs) > 1 else [(inputs[0], out)]
    for _, dst in jobs:  # refuse before loading anything
        if not is_folder_target(dst):
            check_writable(dst, a.overwrite)
    output = OutputConfig(codec=a.codec, crf=a.crf, overwrite=a.overwrite, fps=a.fps)
    if a.ray is not None:
        return _upscale_on_ray(a, cfg, jobs, output)
    up = build_upscaler(a, cfg)
    if up.info.get("demo"):
        from ..models.demo import DEMO_NOTICE
        print(f"uavrt: {DEMO_NOTICE}", file=sys.stderr)
    for src, dst in jobs:
        prog = JsonProgress() if a.json_progress else Progress(not a.quiet)
        try:
            upscale_file(up, src, dst, output, prog)
        finally:
            prog.close()
        print(f"wrote {dst}")
    return 0


def _upscale_on_ray(a, cfg, jobs, output) -> int:
    from ..cluster import ClusterOptions, upscale_many
    if a.demo == bool(a.weights):
        raise ConfigError("--weights", a.weights, "a weights folder, or --demo (exactly one of them)")
    if a.demo:
        from ..models.demo import DEMO_NOTICE
        print(f"uavrt: {DEMO_NOTICE}", file=sys.stderr)
    opts = ClusterOptions(workers=a.workers, frames=a.ray_frames)
    prog = JsonProgress() if a.json_progress else Progress(not a.quiet)
    try:
        done = upscale_many([s for s, _ in jobs], [d for _, d in jobs], cfg, backend_config(a), weights=a.weights,
                            demo=a.demo, vae=a.vae, out=output, cluster=None if a.ray == "local" else a.ray,
                            options=opts, progress=prog)
    finally:
        prog.close()
    for dst in done:
        print(f"wrote {dst}")
    return 0
