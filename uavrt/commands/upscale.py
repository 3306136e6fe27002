"""`uavrt upscale`: a video, an image folder or a folder of videos -> x4."""

from __future__ import annotations

import sys
from fractions import Fraction
from pathlib import Path

from ..errors import ConfigError
from .common import Progress, add_model_args, add_run_args, build_upscaler, run_config


def add_parser(sub):
    u = sub.add_parser("upscale", help="upscale a video (x4)")
    u.add_argument("input", help="video file, image folder, or folder of videos")
    u.add_argument("-o", "--output", required=True, help="output video (or folder when INPUT holds videos)")
    u.add_argument("--overwrite", action="store_true")
    u.add_argument("--codec", default="libx264", help="libx264 | libx265 | ffv1 | prores_ks | libx264rgb")
    u.add_argument("--crf", type=int, default=None)
    u.add_argument("--fps", type=Fraction, default=None, help="frame rate for image-folder inputs (default 30)")
    u.add_argument("-q", "--quiet", action="store_true")
    u.add_argument("--serial-io", action="store_true",
                   help="decode/encode on the same thread as the networks (release-shaped; default overlaps them)")
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
    up = build_upscaler(a, cfg)
    if up.info.get("demo"):
        from ..models.demo import DEMO_NOTICE
        print(f"uavrt: {DEMO_NOTICE}", file=sys.stderr)
    for src, dst in jobs:
        prog = Progress(not a.quiet)
        try:
            upscale_file(up, src, dst, OutputConfig(codec=a.codec, crf=a.crf, overwrite=a.overwrite, fps=a.fps), prog,
                         overlap=not a.serial_io)
        finally:
            prog.close()
        print(f"wrote {dst}")
    return 0
