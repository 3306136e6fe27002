"""`upscale_many`: videos x windows over a pool of Ray workers, each output as the local path."""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from ..config import BackendConfig, RunConfig
from ..errors import ConfigError, UavrtError, check_choice, check_range
from ..runtime.upscaler import Upscaler
from .pool import WorkerPool
from .session import connect
from .worker import ModelSpec, UpscaleWorker, chunk_digest

FRAME_SOURCES = ("ship", "shared")


class _Stopped(UavrtError):
    """A video stopped because another video of the same job failed (that error is raised)."""


@dataclass(frozen=True)
class ClusterOptions:
    """How the work is spread. Defaults fit one machine; on a cluster set `workers` or let it
    count the GPUs (one worker per GPU) or CPU slots.

    frames: "ship" (default): the driver sends each window's low-res frames (uint8) to a worker;
    works on any cluster, the driver's decode is the only decode, and a window's input is a few
    MB against seconds-to-minutes of denoising. "shared": workers decode the frames themselves
    from the same path (a shared filesystem), and the driver sends only a CRC32 of the window's
    frames, which the worker checks, so a different file on some node fails loudly.
    in_flight: windows submitted and not yet consumed per video (default 2 per worker, split
    between the videos running at once): bounds the driver's memory and the object store.
    """

    workers: int | None = None
    gpus_per_worker: float | None = None  # None: 1 when the backend's device is CUDA, else 0
    cpus_per_worker: float = 1
    threads: int | None = None  # torch threads per worker (None: Ray's default = its num_cpus)
    frames: str = "ship"
    in_flight: int | None = None
    videos_at_once: int | None = None  # None: min(videos, workers)
    max_attempts: int = 3  # tries of one window on different workers before the job fails
    max_restarts: int = 3  # Ray restarts of a crashed worker process (model reloaded)
    window_timeout_s: float | None = 3600.0  # a worker silent this long is restarted, its window moved
    ready_timeout_s: float = 900.0
    namespace: str | None = None
    object_store_mb: int | None = None  # local cluster only

    def __post_init__(self):
        check_choice("frames", self.frames, FRAME_SOURCES)
        if self.workers is not None:
            check_range("workers", self.workers, 1, 100000, integer=True)
        if self.in_flight is not None:
            check_range("in_flight", self.in_flight, 1, 100000, integer=True)
        check_range("max_attempts", self.max_attempts, 1, 100, integer=True)


def _count_workers(ray, opts: ClusterOptions, gpus: float) -> int:
    if opts.workers:
        return opts.workers
    res = ray.cluster_resources()
    n = int(res.get("GPU", 0) // gpus) if gpus else int(res.get("CPU", 1) // max(opts.cpus_per_worker, 1e-9))
    if n < 1:
        raise ConfigError("workers", n, "at least one worker's resources in the cluster "
                          f"({gpus or opts.cpus_per_worker} {'GPU' if gpus else 'CPU'} each; cluster has {res})")
    return n


class _Progress:
    """Windows done/total over all videos and per-worker throughput, into the caller's callback:
    progress("windows", done, total) and progress("workers", n, {name: {windows, frames, fps, state}})."""

    def __init__(self, progress: Callable | None, total: int | None):
        self.progress, self.total, self.done, self.t0 = progress, total, 0, time.perf_counter()
        self._lock = threading.Lock()

    def __call__(self, stats: dict):
        if self.progress is None:
            return
        with self._lock:
            self.done += 1
            self.progress("windows", self.done, self.total)
            self.progress("workers", len(stats), stats)


class _Driver:
    """The driver's side of the model: settings and the frame checks and windowing of
    Upscaler.stream itself (the same code as a local run); the networks live in the workers, so
    stream() is always given a remote `submit`."""

    stream = Upscaler.stream
    check_frame = Upscaler.check_frame

    def __init__(self, cfg: RunConfig):
        self.cfg = cfg


class Cluster:
    """A pool of loaded workers on a Ray cluster, kept across jobs (a serving stack's handle):

        with Cluster(ModelSpec(weights="W", run=cfg, backend=be), address="auto") as c:
            c.upscale_many(["a.mp4"], ["a_x4.mp4"])             # the model stays loaded
            c.upscale_many(["b.mp4"], ["b_x4.mp4"], run_cfg=other)   # other settings, same workers
    """

    def __init__(self, model: ModelSpec, address: str | None = None, options: ClusterOptions = ClusterOptions()):
        self.model, self.address, self.options = model, address, options
        self.pool, self.workers, self._session = None, [], None

    def __enter__(self) -> "Cluster":
        opts, be = self.options, self.model.backend
        gpus = opts.gpus_per_worker
        if gpus is None:
            gpus = 1 if be.device.startswith("cuda") else 0
        local = opts.workers or (1 if gpus else max(1, int((os.cpu_count() or 1) // opts.cpus_per_worker)))
        self._session = connect(self.address, num_cpus=None if gpus else int(local * opts.cpus_per_worker + 0.999),
                                namespace=opts.namespace,
                                object_store_bytes=opts.object_store_mb * 2 ** 20 if opts.object_store_mb else None)
        self.ray, self.namespace = self._session.__enter__()
        try:
            self._progress = None
            self.pool = WorkerPool(self.ray, UpscaleWorker, self.model, _count_workers(self.ray, opts, gpus),
                                   namespace=self.namespace, num_gpus=gpus, num_cpus=opts.cpus_per_worker,
                                   max_restarts=opts.max_restarts, max_attempts=opts.max_attempts,
                                   window_timeout_s=opts.window_timeout_s, on_window=self._on_window)
            self.workers = self.pool.wait_ready(opts.ready_timeout_s)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        if self.pool is not None:
            self.pool.close()
            self.pool = None
        if self._session is not None:
            session, self._session = self._session, None
            session.__exit__(None, None, None)

    def _on_window(self, stats):
        if self._progress is not None:
            self._progress(stats)

    def stats(self) -> dict:
        return self.pool.stats()

    def upscale_many(self, paths: Sequence, outputs: Sequence, run_cfg: RunConfig | None = None, out=None,
                     progress: Callable | None = None, frames: str | None = None) -> list:
        """Each video of `paths` into the same position of `outputs`; returns the output paths.
        frames: "ship" | "shared" for this job (default: the cluster's options)."""
        from ..fsutil import check_writable
        from ..runtime.files import OutputConfig
        from ..runtime.plan import window_spans
        from ..runtime.video import is_folder_target, probe
        from ..runtime.files import upscale_file

        run_cfg, out, opts = run_cfg or self.model.run, out or OutputConfig(), self.options
        frames = check_choice("frames", frames or opts.frames, FRAME_SOURCES)
        paths, outputs = [Path(p) for p in paths], [Path(p) for p in outputs]
        if len(paths) != len(outputs) or not paths:
            raise ConfigError("outputs", [str(p) for p in outputs], f"one output per input ({len(paths)} inputs)")
        for p in paths:
            if not p.exists():
                raise ConfigError("INPUT", str(p), "an existing video file or image folder")
        for dst in outputs:  # refuse before any work
            if not is_folder_target(dst):
                check_writable(dst, out.overwrite)
        total = 0
        for p in paths:
            n = probe(p).num_frames
            total = None if (total is None or not n) else \
                total + len(window_spans(n, run_cfg.window.frames, run_cfg.window.overlap))
        pool, n_workers = self.pool, len(self.pool.slots)
        at_once = max(1, min(len(paths), opts.videos_at_once or n_workers))
        in_flight = max(1, (opts.in_flight or 2 * n_workers) // at_once)
        cfg_ref = self.ray.put(run_cfg)  # one copy in the object store, not one per window
        abort = threading.Event()
        driver = _Driver(run_cfg)
        sent: list = []  # this job's windows, to forget the unconsumed ones if it fails

        def one(src: Path, dst: Path):
            def submit(chunk, span, float_frames):
                if abort.is_set():
                    raise _Stopped("stopped: another video of this job failed")
                label = f"{src.name}[{span.start}:{span.stop}]"
                if frames == "shared":
                    h = pool.submit("process_file", cfg_ref, str(src.resolve()), span, float_frames,
                                    chunk_digest(chunk), label=label)
                else:
                    h = pool.submit("process", cfg_ref, chunk, span, float_frames, label=label)
                sent.append(h)
                return h
            try:
                return upscale_file(driver, src, dst, out, progress if at_once == 1 else None,
                                    submit=submit, in_flight=in_flight)
            except BaseException:
                abort.set()
                raise

        self._progress = _Progress(progress, total)
        ok = False
        try:
            if at_once == 1:
                done = [one(s, d) for s, d in zip(paths, outputs)]
            else:
                with ThreadPoolExecutor(at_once, thread_name_prefix="uavrt-video") as ex:
                    futures = [ex.submit(one, s, d) for s, d in zip(paths, outputs)]
                    errors = [f.exception() for f in futures]
                first = next((e for e in errors if e is not None and not isinstance(e, _Stopped)), None)
                if first is not None or any(errors):
                    raise first or next(e for e in errors if e is not None)
                done = [f.result() for f in futures]
            ok = True
            return done
        finally:
            self._progress = None
            if not ok:
                pool.drop(sent)


def upscale_many(paths: Sequence, outputs: Sequence, run_cfg: RunConfig = RunConfig(),
                 backend_cfg: BackendConfig = BackendConfig(), *, weights: str | None = None, demo: bool = False,
                 vae: str = "3d", out=None, cluster: str | None = None,
                 options: ClusterOptions = ClusterOptions(), progress: Callable | None = None,
                 report: dict | None = None) -> list:
    """Upscale each video of `paths` into the same position of `outputs` on a Ray cluster.

    cluster: None starts a local cluster for this call; "auto" / "HOST:PORT" / "ray://..." joins
    one (`ray start --head`); a process already connected to Ray is used as is. The weights
    folder must be at the same path on every node (or use demo=True). Each output is the same
    file, byte for byte, as `upscale_file` on one machine with the same settings and torch
    threads. report: a dict filled with the workers' info and stats (benchmarks, tests).
    To keep the workers loaded across calls, use `Cluster`.
    """
    spec = ModelSpec(weights=str(weights) if weights else None, demo=demo, vae=vae, run=run_cfg,
                     backend=backend_cfg, threads=options.threads)
    with Cluster(spec, cluster, options) as c:
        if report is not None:
            report["workers"] = c.workers
        try:
            return c.upscale_many(paths, outputs, run_cfg, out, progress)
        finally:
            if report is not None:
                report["stats"] = c.stats()
