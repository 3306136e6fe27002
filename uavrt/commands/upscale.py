"""`uavrt upscale`: a video, an image folder or a folder of videos -> x4."""

from __future__ import annotations

import argparse
import sys
from fractions import Fraction

from ..errors import ConfigError, UavrtError
from .common import add_model_args, add_run_args, backend_config, build_upscaler, make_progress, run_config


def add_parser(sub):
    u = sub.add_parser("upscale", help="upscale a video (x4)")
    u.add_argument("input", help="video file, image folder, or folder of videos")
    u.add_argument("-o", "--output", required=True, help="output video (or folder when INPUT holds videos)")
    u.add_argument("--overwrite", action="store_true")
    u.add_argument("--codec", default="libx264", help="libx264 | libx265 | ffv1 | prores_ks | libx264rgb")
    u.add_argument("--crf", type=int, default=None)
    u.add_argument("--fps", default=None, help="frame rate for image-folder inputs (default 30), e.g. 24 or 30000/1001")
    u.add_argument("--allow-truncated", action="store_true",
                   help="upscale the readable frames of a truncated input (else it is refused)")
    u.add_argument("-q", "--quiet", action="store_true", help="no progress output (same as --progress none)")
    u.add_argument("--progress", default=None, choices=("bar", "json", "none"),
                   help="bar (default): progress bars; json: one JSON object per event on stderr")
    u.add_argument("--json-progress", dest="progress", action="store_const", const="json",
                   help="same as --progress json")
    g = u.add_argument_group("long jobs (resume) and previews (a segment)")
    g.add_argument("--resume", action="store_true",
                   help="continue the job in the job folder (refused when there is none); without it a "
                        "matching job folder is continued anyway, a new one is started otherwise")
    g.add_argument("--restart", action="store_true", help="discard the job folder's finished windows first")
    g.add_argument("--no-job-state", action="store_true",
                   help="keep no job folder (a killed run starts again from the first window)")
    g.add_argument("--job-dir", default=None, help="job folder (default: OUTPUT.uavrt-job beside the output)")
    g.add_argument("--start", default=None, type=_start,
                   help="first frame: an index (120) or a time (12.5s, 1:02.5, 0:01:02.5)")
    g.add_argument("--frames", type=int, default=None, help="process N frames from --start")
    g.add_argument("--duration", type=_seconds, default=None, help="process this many seconds from --start")
    r = u.add_argument_group("many GPUs and machines (Ray)")
    r.add_argument("--ray", nargs="?", const="local", default=None, metavar="ADDRESS",
                   help="run the windows on Ray workers: no ADDRESS starts a local cluster; 'auto' or HOST:PORT "
                        "joins one started with `ray start --head` (put --ray after INPUT)")
    r.add_argument("--workers", type=int, default=None,
                   help="Ray workers (default: one per GPU of the cluster, or one per CPU on a CPU cluster)")
    r.add_argument("--ray-frames", default="ship", help="ship (driver sends the frames) | shared (workers read the "
                                                         "input from the same path, a shared filesystem)")
    u.add_argument("--max-memory", default=None,
                   help="GPU memory budget, e.g. 24GB: the largest tile whose predicted peak fits (uavrt plan)")
    u.add_argument("--serial-io", action="store_true",
                   help="decode/encode on the same thread as the networks (release-shaped; default overlaps them)")
    add_model_args(u)
    add_run_args(u)
    u.set_defaults(func=run)


def _seconds(text: str) -> Fraction:
    """12.5 / 12.5s / 1:02.5 / 0:01:02.5 -> seconds (exact)."""
    t = text.strip().lower().removesuffix("s")
    try:
        parts = [Fraction(x) for x in t.split(":")]
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(f"expected seconds like 12.5, 12.5s or 1:02.5, got {text!r}") from None
    if len(parts) > 3 or any(p < 0 for p in parts):
        raise argparse.ArgumentTypeError(f"expected seconds like 12.5, 12.5s or 1:02.5, got {text!r}")
    value = Fraction(0)
    for p in parts:
        value = value * 60 + p
    return value


def _start(text: str):
    """A plain integer is a frame index; anything with a unit, a point or colons is a time."""
    if text.strip().isdigit():
        return int(text)
    return _seconds(text)


def _segment(a):
    from ..runtime.files import Segment
    if a.start is None and a.frames is None and a.duration is None:
        return None
    start_frame = a.start if isinstance(a.start, int) else None
    start_s = a.start if isinstance(a.start, Fraction) else None
    return Segment(start_frame=start_frame, start_s=start_s, frames=a.frames, duration_s=a.duration)


def _resume_mode(a):
    if sum([a.resume, a.restart, a.no_job_state]) > 1:
        raise ConfigError("--resume/--restart/--no-job-state", "more than one", "at most one of them")
    return None if a.no_job_state else "resume" if a.resume else "restart" if a.restart else "auto"


def _fit_memory(a, cfg, src):
    from .common import backend_config
    from ..planner import parse_bytes
    from .plan import fit_memory, input_shape, network_configs
    parse_bytes(a.max_memory)  # a bad budget is refused before the input is even probed
    if a.backend != "torch":
        raise ConfigError("--max-memory", a.max_memory, "used with --backend torch (the planner traces PyTorch)")
    width, height, frames = input_shape(src)
    cfg, p = fit_memory(cfg, backend_config(a), width, height, frames, a.max_memory, a.vae,
                        configs=network_configs(a.weights, a.demo, a.vae))
    print(f"uavrt: --max-memory {a.max_memory}: tile {p.tile or 'none (untiled)'}, predicted peak "
          f"{p.peak / (1 << 30):.2f} GiB in {p.worst.name}", file=sys.stderr)
    return cfg


def run(a) -> int:
    from ..preflight import plan_upscale
    from ..runtime.files import OutputConfig, upscale_file
    from .common import backend_config
    cfg = run_config(a)
    segment, mode = _segment(a), _resume_mode(a)
    # every refusal that needs no model happens here, before any weight is read
    jobs = plan_upscale(a.input, a.output, cfg, backend_config(a), codec=a.codec, crf=a.crf, overwrite=a.overwrite,
                        fps=a.fps, allow_truncated=a.allow_truncated, weights=a.weights, demo=a.demo, vae=a.vae)
    output = OutputConfig(codec=a.codec, crf=a.crf, overwrite=a.overwrite, fps=a.fps,
                          allow_truncated=a.allow_truncated)
    if a.max_memory:  # before any weights load: refuse a budget nothing fits
        cfg = _fit_memory(a, cfg, jobs[0].src)
    if a.ray is not None:
        if segment is not None or a.resume or a.restart or a.job_dir:
            raise ConfigError("--ray", a.ray, "no --start/--frames/--duration/--resume/--restart/--job-dir with it "
                              "(segments and job state run on one machine for now)")
        for job in jobs:
            if job.error is not None:
                print(f"uavrt upscale: FAILED {job.src}: {job.error}", file=sys.stderr)
        rc = _upscale_on_ray(a, cfg, [(j.src, j.dst) for j in jobs if j.error is None], output)
        return rc or (1 if any(j.error for j in jobs) else 0)
    if a.job_dir and len(jobs) > 1:
        raise ConfigError("--job-dir", a.job_dir, "no --job-dir with a folder of videos (each output keeps "
                          "its job folder beside it)")
    if a.quiet or a.progress in ("json", "none"):
        from transformers.utils import logging as hf_logging
        hf_logging.disable_progress_bar()  # its weight-loading bar would break one-JSON-object-per-line
    up = build_upscaler(a, cfg)
    if up.info.get("demo"):
        from ..models.demo import DEMO_NOTICE
        if a.progress == "json" and not a.quiet:
            make_progress("json").notice(DEMO_NOTICE)
        else:
            print(f"uavrt: {DEMO_NOTICE}", file=sys.stderr)
    failed = []
    for job in jobs:
        if job.error is None:
            prog = make_progress("none" if a.quiet else a.progress)
            try:
                upscale_file(up, job.src, job.dst, output, prog, overlap=not a.serial_io, segment=segment,
                             resume=mode, job_dir=a.job_dir)
                print(f"wrote {job.dst}")
                continue
            except UavrtError as e:
                if len(jobs) == 1:
                    raise
                job.error = e
            finally:
                prog.close()
        failed.append(job)
        print(f"uavrt upscale: FAILED {job.src}: {job.error}", file=sys.stderr)
    if failed:  # a folder of videos: the others were still processed
        print(f"uavrt upscale: {len(jobs) - len(failed)} of {len(jobs)} videos written; failed: "
              + ", ".join(j.src.name for j in failed), file=sys.stderr)
        return 1
    return 0


def _upscale_on_ray(a, cfg, jobs, output) -> int:
    from ..cluster import ClusterOptions, upscale_many
    if a.demo == bool(a.weights):
        raise ConfigError("--weights", a.weights, "a weights folder, or --demo (exactly one of them)")
    if a.demo:
        from ..models.demo import DEMO_NOTICE
        print(f"uavrt: {DEMO_NOTICE}", file=sys.stderr)
    opts = ClusterOptions(workers=a.workers, frames=a.ray_frames)
    prog = make_progress("none" if a.quiet else a.progress)
    try:
        done = upscale_many([s for s, _ in jobs], [d for _, d in jobs], cfg, backend_config(a), weights=a.weights,
                            demo=a.demo, vae=a.vae, out=output, cluster=None if a.ray == "local" else a.ray,
                            options=opts, progress=prog)
    finally:
        prog.close()
    for dst in done:
        print(f"wrote {dst}")
    return 0
