"""`uavrt serve`: the job server. Flags -> ServeConfig + a loaded model -> uavrt.serve.run_server."""

from __future__ import annotations

import os
import sys

from .common import add_model_args, add_run_args, build_upscaler, run_config


def add_parser(sub):
    s = sub.add_parser("serve", help="job server: HTTP API to submit videos, poll progress, download results")
    add_model_args(s)
    add_run_args(s)  # the server's default settings; each job's `settings` JSON overrides them
    g = s.add_argument_group("server")
    g.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback only)")
    g.add_argument("--port", type=int, default=8000)
    g.add_argument("--jobs-dir", default="uavrt-jobs", help="job records (SQLite), uploads and results")
    g.add_argument("--token", default=os.environ.get("UAVRT_SERVE_TOKEN"),
                   help="bearer token required on /v1/* except /v1/health (default: $UAVRT_SERVE_TOKEN; none)")
    g.add_argument("--allow-path", help="folder whose files may be submitted by path instead of uploaded")
    g.add_argument("--max-upload-mb", type=float, default=2048.0)
    g.add_argument("--max-queue", type=int, default=100, help="jobs waiting; beyond it submissions get 429")
    g.add_argument("--disk-quota-gb", type=float, default=50.0, help="size limit of --jobs-dir")
    g.add_argument("--keep-hours", type=float, default=24.0, help="finished jobs are deleted after this long")
    g.add_argument("--codec", default="libx264", help="codec of the results (MP4, input audio copied)")
    g.add_argument("--crf", type=int, default=None)
    s.set_defaults(func=run)


def run(a) -> int:
    from ..options import OPTION_NAMES
    from ..serve import ServeConfig, run_server
    defaults = {k: getattr(a, k) for k in OPTION_NAMES if hasattr(a, k)}
    cfg = ServeConfig(jobs_dir=a.jobs_dir, host=a.host, port=a.port, token=a.token or None,
                      allow_path=a.allow_path, max_upload_mb=a.max_upload_mb, max_queue=a.max_queue,
                      disk_quota_gb=a.disk_quota_gb, keep_hours=a.keep_hours, defaults=defaults, codec=a.codec,
                      crf=a.crf)
    up = build_upscaler(a, run_config(a))
    if up.info.get("demo"):
        from ..models.demo import DEMO_NOTICE
        print(f"uavrt serve: {DEMO_NOTICE}", file=sys.stderr)
    return run_server(cfg, up)
