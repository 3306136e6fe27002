"""`uavrt serve`: an asynchronous job API for video upscaling (FastAPI + uvicorn).

    from uavrt.serve import ServeConfig, run_server
    run_server(ServeConfig(jobs_dir="jobs/"), Upscaler.demo())

The model is loaded once by the caller; jobs run one at a time, FIFO, in a worker thread;
job records live in SQLite in the jobs folder, so finished results, queued jobs and an
interrupted job survive a restart. Needs the `serve` extra (fastapi, uvicorn, prometheus_client).
"""

from .config import ServeConfig

__all__ = ["ServeConfig", "run_server"]


def run_server(cfg, upscaler):
    from .app import run_server as _run
    return _run(cfg, upscaler)
