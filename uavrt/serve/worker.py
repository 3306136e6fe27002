"""The job worker: one thread per loaded model (= per device) runs queued jobs one at a time, FIFO.

A job is `upscale_file(model.with_config(cfg), input, result)`. Its progress callback records
progress and is also the cancellation point: when the job was cancelled (DELETE) or the server
is stopping, the callback raises at the next denoising step / window boundary; the encoder's
atomic output removes the partial result, and the stream's frames and tensors are released.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from pathlib import Path

from ..errors import UavrtError
from .store import Job, JobStore

log = logging.getLogger("uavrt.serve")

MAX_ATTEMPTS = 3  # runs interrupted by a crash/restart before a job is failed


class JobCancelled(Exception):
    """Raised inside a running job by its progress callback; `reason` is 'cancelled' or 'shutdown'."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(f"job stopped: {reason}")


def window_count(frames: int | None, window: int, overlap: int) -> int | None:
    if not frames:
        return None
    from ..runtime.plan import window_spans
    return len(window_spans(frames, window, overlap))


class Progress:
    """The progress callback of one job: progress(kind, done, total) with kinds "video" (total
    frames), "step" (denoising step of the current window) and "frames" (frames finished)."""

    PERSIST_EVERY_S = 0.5

    def __init__(self, job_id: str, store: JobStore, cfg, frames: int | None, should_stop):
        self.job_id, self.store, self.should_stop = job_id, store, should_stop
        self.frames_total = frames
        self.window_cfg = cfg.window
        self.windows_total = window_count(frames, cfg.window.frames, cfg.window.overlap)
        self.windows_done = 0
        self.steps_done, self.steps_total = 0, cfg.sampler.steps
        self.frames_done = 0
        self.t0 = time.monotonic()
        self._last_persist = 0.0

    def __call__(self, kind, done, total):
        if kind == "video":
            if total:
                self.frames_total = total
                self.windows_total = window_count(total, self.window_cfg.frames, self.window_cfg.overlap)
        elif kind == "step":
            self.steps_done, self.steps_total = done, total
        elif kind == "frames":
            self.frames_done = done
            self.windows_done += 1
            self.steps_done = 0
        reason = self.should_stop()
        if reason:
            raise JobCancelled(reason)
        now = time.monotonic()
        if now - self._last_persist >= self.PERSIST_EVERY_S or kind == "frames":
            self._last_persist = now
            self.store.set_progress(self.job_id, self.snapshot())

    def fraction(self) -> float:
        if not self.windows_total:
            return 0.0
        step = self.steps_done / self.steps_total if self.steps_total else 0.0
        return min(1.0, (self.windows_done + step) / self.windows_total)

    def snapshot(self, final: bool = False) -> dict:
        f = 1.0 if final else self.fraction()
        elapsed = time.monotonic() - self.t0
        return {
            "fraction": round(f, 4),
            "windows": {"done": self.windows_total if final else self.windows_done, "total": self.windows_total},
            "steps": {"done": self.steps_total if final else self.steps_done, "total": self.steps_total},
            "frames": {"done": self.frames_total if final and self.frames_total else self.frames_done,
                       "total": self.frames_total},
            "elapsed_s": round(elapsed, 3),
            "eta_s": 0.0 if final else (round(elapsed * (1 - f) / f, 1) if f > 0 else None),
            "fps": round(self.frames_done / elapsed, 4) if elapsed > 0 and self.frames_done else None,
        }


class Worker(threading.Thread):
    def __init__(self, store: JobStore, upscaler, make_job_config, output_config, *, idle_hook=None,
                 idle_every_s: float = 30.0):
        super().__init__(name="uavrt-serve-worker", daemon=True)  # a dead process re-queues its job anyway
        self.store, self.upscaler = store, upscaler
        self.make_job_config = make_job_config  # settings dict -> RunConfig (validated at submit)
        self.output_config = output_config
        self.idle_hook, self.idle_every_s = idle_hook, idle_every_s
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._cancel: set = set()
        self.current: str | None = None
        self.frames_total = 0  # frames written since start (metrics)
        self.last_fps: float | None = None

    # --- called from the request handlers ------------------------------------------------------
    def notify(self) -> None:
        self._wake.set()

    def request_cancel(self, job_id: str) -> bool:
        """Ask the running job to stop; False when `job_id` is not the running job."""
        with self._lock:
            if self.current != job_id:
                return False
            self._cancel.add(job_id)
            return True

    def stop(self, timeout: float = 30.0) -> None:
        self._stopping.set()
        self._wake.set()
        self.join(timeout)

    # --- the loop ------------------------------------------------------------------------------
    def run(self):
        last_idle = 0.0
        while not self._stopping.is_set():
            if self.idle_hook and time.monotonic() - last_idle >= self.idle_every_s:
                last_idle = time.monotonic()
                try:
                    self.idle_hook()
                except Exception:  # housekeeping must never stop the worker
                    log.exception("housekeeping failed")
            job = self.store.claim_next()
            if job is None:
                self._wake.wait(min(1.0, self.idle_every_s))
                self._wake.clear()
                continue
            with self._lock:
                self.current = job.id
            try:
                self._run(job)
            finally:
                with self._lock:
                    self.current = None
                    self._cancel.discard(job.id)
                gc.collect()  # a cancelled job's frames and tensors go now, not at some later collection
                _empty_device_cache()

    def _should_stop(self, job_id: str):
        if job_id in self._cancel:
            return "cancelled"
        if self._stopping.is_set():
            return "shutdown"
        return None

    def _run(self, job: Job) -> None:
        from ..runtime.files import upscale_file
        store = self.store
        if job.attempts > MAX_ATTEMPTS:  # it took the server down each time: do not try forever
            store.finish(job.id, "failed", error=f"the server stopped {MAX_ATTEMPTS} times while this job ran")
            return
        try:
            cfg = self.make_job_config(job.settings)
            up = self.upscaler.with_config(cfg)
        except UavrtError as e:  # settings valid at submit but not any more (server restarted with others)
            store.finish(job.id, "failed", error=str(e))
            return
        progress = Progress(job.id, store, cfg, job.info.get("frames"), lambda: self._should_stop(job.id))
        dst = store.result_path(job.id)
        dst.parent.mkdir(parents=True, exist_ok=True)
        log.info("job %s: running (%s)", job.id, job.name)
        try:
            upscale_file(up, Path(job.input), dst, self.output_config, progress=progress)
        except JobCancelled as c:
            if c.reason == "shutdown":
                store.requeue(job.id)
                log.info("job %s: interrupted by shutdown, queued again", job.id)
            else:
                store.delete_files(job.id)
                store.finish(job.id, "cancelled", progress=progress.snapshot())
                log.info("job %s: cancelled", job.id)
            return
        except Exception as e:  # any failure of one job is that job's failure, not the server's
            dst.unlink(missing_ok=True)
            msg = str(e) if isinstance(e, UavrtError) else f"{type(e).__name__}: {e}"
            store.finish(job.id, "failed", error=msg, progress=progress.snapshot())
            log.warning("job %s: failed: %s", job.id, msg)
            return
        if self._should_stop(job.id) == "cancelled":  # cancelled after the last step: honour it
            store.delete_files(job.id)
            store.finish(job.id, "cancelled", progress=progress.snapshot())
            return
        snap = progress.snapshot(final=True)
        self.frames_total += snap["frames"]["done"] or 0
        self.last_fps = snap["frames"]["done"] / snap["elapsed_s"] if snap["elapsed_s"] and snap["frames"]["done"] else None
        store.finish(job.id, "succeeded", result_bytes=dst.stat().st_size, progress=snap)
        log.info("job %s: succeeded (%.1f s)", job.id, snap["elapsed_s"])


def _empty_device_cache() -> None:
    import torch
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.empty_cache()
