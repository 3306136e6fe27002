"""`uavrt upscale`: a video, an image folder or a folder of videos -> x4."""

from __future__ import annotations

import sys

from ..errors import UavrtError
from .common import Progress, add_model_args, add_run_args, build_upscaler, run_config


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
    u.add_argument("-q", "--quiet", action="store_true")
    add_model_args(u)
    add_run_args(u)
    u.set_defaults(func=run)


def run(a) -> int:
    from ..preflight import plan_upscale
    from ..runtime.files import OutputConfig, upscale_file
    from .common import backend_config
    cfg = run_config(a)
    # every refusal that needs no model happens here, before any weight is read
    jobs = plan_upscale(a.input, a.output, cfg, backend_config(a), codec=a.codec, crf=a.crf, overwrite=a.overwrite,
                        fps=a.fps, allow_truncated=a.allow_truncated, weights=a.weights, demo=a.demo, vae=a.vae)
    up = build_upscaler(a, cfg)
    if up.info.get("demo"):
        from ..models.demo import DEMO_NOTICE
        print(f"uavrt: {DEMO_NOTICE}", file=sys.stderr)
    out = OutputConfig(codec=a.codec, crf=a.crf, overwrite=a.overwrite, fps=a.fps, allow_truncated=a.allow_truncated)
    failed = []
    for job in jobs:
        if job.error is None:
            prog = Progress(not a.quiet)
            try:
                upscale_file(up, job.src, job.dst, out, prog)
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
