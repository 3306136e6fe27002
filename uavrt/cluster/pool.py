"""A pool of model-holding Ray actors with windows routed, retried and counted.

Ray gives the actors, their placement by resources (`num_gpus=1` each on GPU nodes) and the
restart of a crashed actor process (`max_restarts`). On top of that this module decides where
each window goes and what a failure means:

- system failure (the actor's process or node died, its result object was lost, or it did not
  answer within `window_timeout_s`): the window is sent again to another live worker, up to
  `max_attempts` times in all. Every in-flight window of the failed worker is re-sent at once,
  not when the driver gets to it. A window's output is taken from exactly one attempt, so
  nothing is duplicated; the driver consumes windows in order, so nothing is lost.
- application error raised inside the worker (InputError, ConfigError, any exception of uavrt's
  or torch's code): deterministic for that input, so it fails the job at once with that error.
- a failed worker is put on probation: it gets windows again only after it answers a ping
  (Ray restarted it and the model is loaded again); one Ray reports dead for good is dropped.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Callable

from ..errors import UavrtError


class WorkerLost(UavrtError):
    """No live worker is left, or a window failed on too many workers."""


@dataclass
class _Slot:
    name: str
    actor: object
    state: str = "loading"  # loading | ok | probation | dead
    ping: object = None  # ObjectRef of the readiness call while loading / on probation
    since: float = 0.0
    retry_at: float = 0.0
    inflight: set = field(default_factory=set)
    windows: int = 0
    frames: int = 0
    busy_s: float = 0.0
    failures: int = 0
    info: dict = field(default_factory=dict)


def _system_errors(ray):
    ex = ray.exceptions
    return (ex.RayActorError, ex.ObjectLostError, ex.OwnerDiedError, ex.WorkerCrashedError, ex.NodeDiedError,
            ex.LocalRayletDiedError)


class WindowHandle:
    """One window's remote call; `result()` returns its WindowOutput (retrying on failures)."""

    def __init__(self, pool: "WorkerPool", method: str, args: tuple, label: str):
        self.pool, self.method, self.args, self.label = pool, method, args, label
        self.attempts, self.slot, self.ref, self.errors = 0, None, None, []
        pool._launch(self, exclude=())

    def result(self):
        return self.pool._result(self)


class WorkerPool:
    def __init__(self, ray, worker_cls, spec, n: int, *, namespace: str, num_gpus: float = 0, num_cpus: float = 1,
                 max_restarts: int = 3, max_attempts: int = 3, window_timeout_s: float | None = 3600.0,
                 probation_s: float = 600.0, name_prefix: str = "uavrt-worker",
                 on_window: Callable | None = None):
        self.ray, self.max_attempts, self.window_timeout_s = ray, max_attempts, window_timeout_s
        self.probation_s, self.on_window, self.namespace = probation_s, on_window, namespace
        self._lock = threading.RLock()
        self._errors = _system_errors(ray)
        remote = ray.remote(worker_cls)
        prefix = f"{name_prefix}-{uuid.uuid4().hex[:6]}"  # names stay unique while a killed pool is reaped
        self.slots = []
        for i in range(n):
            name = f"{prefix}-{i}"
            # max_task_retries=0: a failed window comes back to us, and we send it to ANOTHER worker
            actor = remote.options(name=name, namespace=namespace, num_gpus=num_gpus, num_cpus=num_cpus,
                                   max_restarts=max_restarts, max_task_retries=0).remote(spec, name)
            self.slots.append(_Slot(name, actor, ping=actor.ready.remote(), since=time.monotonic()))

    # --- lifecycle ------------------------------------------------------------------------------
    def wait_ready(self, timeout_s: float = 900.0, at_least: int | None = None) -> list:
        """Wait until every worker has loaded its model (or `at_least` have, the rest join later).
        A worker whose constructor raised (bad weights, bad config) fails the job with that error."""
        need = len(self.slots) if at_least is None else at_least
        deadline = time.monotonic() + timeout_s
        while sum(s.state == "ok" for s in self.slots) < need:
            left = deadline - time.monotonic()
            if left <= 0:
                raise WorkerLost(f"only {sum(s.state == 'ok' for s in self.slots)} of {len(self.slots)} workers "
                                 f"loaded the model within {timeout_s:.0f} s (not enough GPUs/CPUs in the cluster?)")
            waiting, alive = self._waiting()
            if not alive:
                raise WorkerLost(f"every worker died while loading the model ({self._why()})")
            self._wait(waiting, min(left, 5.0))
            self._refresh(raise_init_errors=True)
        return [s.info for s in self.slots if s.state == "ok"]

    def close(self):
        for s in self.slots:
            try:
                self.ray.kill(s.actor)
            except Exception:  # already gone
                pass

    # --- routing ----------------------------------------------------------------------------------
    def submit(self, method: str, *args, label: str = "") -> WindowHandle:
        return WindowHandle(self, method, args, label)

    def _refresh(self, raise_init_errors: bool = False):
        """Promote workers whose ping answered; drop those Ray says are dead for good.

        Ray's words (checked on 2.60): a process that was killed and is being restarted answers
        ActorUnavailableError, at once, to every call until its constructor has run again; an
        actor killed with ray.kill or out of restarts answers ActorDiedError."""
        ex, now = self.ray.exceptions, time.monotonic()
        with self._lock:
            pending = [s for s in self.slots if s.state in ("loading", "probation")]
            for s in pending:
                if s.ping is None and now >= s.retry_at:
                    s.ping = s.actor.ready.remote()
            asked = [s for s in pending if s.ping is not None]
        if not asked:
            return
        ready, _ = self.ray.wait([s.ping for s in asked], num_returns=len(asked), timeout=0)
        ready = set(ready)
        for s in asked:
            if s.ping not in ready:
                if now - s.since > self.probation_s:
                    s.state = "dead"
                continue
            try:
                info = self.ray.get(s.ping)
            except ex.RayTaskError as e:  # the constructor raised: it would on every worker
                s.state = "dead"
                if raise_init_errors:
                    raise _cause(e) from None
                continue
            except ex.ActorDiedError:
                s.state = "dead"
                continue
            except self._errors:  # restarting: ask again in a second
                s.ping, s.retry_at = None, now + 1.0
                if now - s.since > self.probation_s:
                    s.state = "dead"
                continue
            with self._lock:
                s.state, s.info, s.ping = "ok", info, None

    def _waiting(self) -> list:
        """Pings still out; an empty list with workers on probation means: sleep, then ping."""
        with self._lock:
            alive = [s for s in self.slots if s.state in ("loading", "probation")]
            return [s.ping for s in alive if s.ping is not None], bool(alive)

    def _wait(self, refs, timeout):
        if refs:
            self.ray.wait(refs, num_returns=1, timeout=timeout)
        else:
            time.sleep(min(timeout, 0.5))

    def _pick(self, exclude):
        deadline = time.monotonic() + self.probation_s
        while True:  # bounded by the probation deadline
            self._refresh()
            with self._lock:
                ok = [s for s in self.slots if s.state == "ok"]
                pool = [s for s in ok if s.name not in exclude] or ok
                if pool:
                    return min(pool, key=lambda s: (len(s.inflight), s.windows))
            waiting, alive = self._waiting()
            if not alive:
                raise WorkerLost(f"no live worker left ({self._why()})")
            if time.monotonic() > deadline:
                raise WorkerLost(f"no worker came back within {self.probation_s:.0f} s ({self._why()})")
            self._wait(waiting, 5.0)

    def _launch(self, h: WindowHandle, exclude):
        if h.attempts >= self.max_attempts:
            raise WorkerLost(f"window {h.label} failed on {h.attempts} workers: " + "; ".join(h.errors[-3:]))
        slot = self._pick(exclude)
        with self._lock:
            h.slot, h.attempts = slot, h.attempts + 1
            h.ref = getattr(slot.actor, h.method).remote(*h.args)
            slot.inflight.add(h)

    def _failed(self, slot: _Slot, error: Exception):
        """Put the worker on probation and re-send every window it held."""
        with self._lock:
            if slot.state == "ok":
                dead = isinstance(error, self.ray.exceptions.ActorDiedError)
                slot.state, slot.since, slot.failures = ("dead" if dead else "probation"), time.monotonic(), \
                    slot.failures + 1
                slot.ping, slot.retry_at = None, time.monotonic() + 0.5
            held = list(slot.inflight)
            slot.inflight.clear()
        if not held:
            return
        # a window that finished before the death has its result in the object store (owned by
        # the driver): keep it; if that object turns out lost, _result re-sends it then
        done, _ = self.ray.wait([h.ref for h in held], num_returns=len(held), timeout=0)
        done = set(done)
        for h in held:
            if h.ref in done:
                continue
            h.errors.append(f"{slot.name}: {type(error).__name__}")
            self._launch(h, exclude={slot.name})

    def drop(self, handles):
        """Forget windows a failed job will never consume (cancel them where they still wait)."""
        for h in handles:
            with self._lock:
                if h.slot is not None:
                    h.slot.inflight.discard(h)
            try:
                self.ray.cancel(h.ref)
            except Exception:  # finished, or Ray cannot cancel it: it only costs that window's compute
                pass

    def _resend(self, h: WindowHandle, slot: _Slot, ref, error: Exception):
        if h.ref is not ref:  # another window's failure already re-sent this one
            return
        self._failed(slot, error)
        if h.ref is ref:  # its result was lost after it finished, or it was not held any more
            with self._lock:
                slot.inflight.discard(h)
            h.errors.append(f"{slot.name}: {type(error).__name__}")
            self._launch(h, exclude={slot.name})

    def _result(self, h: WindowHandle):
        ray = self.ray
        for _ in range(self.max_attempts + 1):  # each pass either returns, raises or relaunches
            slot, ref = h.slot, h.ref
            try:
                out, stats = ray.get(ref, timeout=self.window_timeout_s)
            except ray.exceptions.RayTaskError as e:
                with self._lock:
                    slot.inflight.discard(h)
                raise _cause(e) from None
            except ray.exceptions.GetTimeoutError:
                # a hung worker: restart it (Ray re-runs its constructor), its windows go elsewhere
                ray.kill(slot.actor, no_restart=False)
                self._resend(h, slot, ref, TimeoutError(f"no answer in {self.window_timeout_s} s"))
                continue
            except self._errors as e:
                self._resend(h, slot, ref, e)
                continue
            with self._lock:
                slot.inflight.discard(h)
                slot.windows += 1
                slot.frames += stats["frames"]
                slot.busy_s += stats["seconds"]
            if self.on_window:
                self.on_window(self.stats())
            return out
        raise WorkerLost(f"window {h.label} failed on {h.attempts} workers: " + "; ".join(h.errors[-3:]))

    # --- reporting --------------------------------------------------------------------------------
    def stats(self) -> dict:
        with self._lock:
            return {s.name: {"state": s.state, "windows": s.windows, "frames": s.frames, "inflight": len(s.inflight),
                             "fps": round(s.frames / s.busy_s, 3) if s.busy_s else None,
                             "failures": s.failures} for s in self.slots}

    def _why(self) -> str:
        return ", ".join(f"{s.name}: {s.state}" for s in self.slots)


def _cause(e):
    """The worker's own exception (a uavrt InputError stays an InputError), else Ray's."""
    cause = getattr(e, "cause", None)
    return cause if isinstance(cause, BaseException) else e
