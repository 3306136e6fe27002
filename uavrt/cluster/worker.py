"""The Ray actor: one loaded model per GPU (or CPU slot), many windows of many videos.

Plain Python class here; `pool.py` wraps it with `ray.remote` and the resource options, so
this module imports without Ray and the class can be unit-tested in-process.
"""

from __future__ import annotations

import fcntl
import os
import socket
import time
import zlib
from dataclasses import dataclass, field

import numpy as np

from ..config import BackendConfig, RunConfig
from ..errors import ConfigError, InputError


@dataclass(frozen=True)
class ModelSpec:
    """What every worker loads: small and picklable (the weights travel by path, not by value).

    weights: the release folder, at the same path on every node (a shared filesystem or a copy);
    demo: the seeded demo model instead, generated on each node (same seed -> same weights).
    threads: torch intra-op threads in the worker (None: Ray's per-actor default, which follows
    the actor's num_cpus).
    """

    weights: str | None = None
    demo: bool = False
    demo_seed: int = 0
    vae: str = "3d"
    run: RunConfig = field(default_factory=RunConfig)
    backend: BackendConfig = field(default_factory=BackendConfig)
    threads: int | None = None

    def __post_init__(self):
        if self.demo == bool(self.weights):
            raise ConfigError("weights", self.weights, "a weights folder, or demo=True (exactly one of them)")

    def load(self):
        from dataclasses import replace

        from ..runtime.upscaler import Upscaler
        backend = self.backend
        if backend.device.startswith("cuda:"):
            # Ray gives each actor its own GPU(s) through CUDA_VISIBLE_DEVICES: index 0 is ours
            backend = replace(backend, device="cuda")
        if self.threads:
            import torch
            torch.set_num_threads(self.threads)
        if self.demo:
            # several workers on one node would write the demo files at once: one at a time
            from ..models.demo import demo_weights_dir
            from ..fsutil import cache_root
            base = cache_root()
            base.mkdir(parents=True, exist_ok=True)
            with open(base / ".demo.lock", "w") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                demo_weights_dir(self.demo_seed, with_raft=bool(self.run.sampler.propagation_steps))
            return Upscaler.demo(self.run, backend, vae=self.vae, seed=self.demo_seed)
        return Upscaler.from_weights(self.weights, self.run, backend, vae=self.vae)


def chunk_digest(chunk: np.ndarray) -> int:
    """CRC32 of a window's input frames: cheap (GB/s), tells a worker that read its own frames
    whether it decoded exactly what the driver did."""
    return zlib.crc32(np.ascontiguousarray(chunk).data)


class _Cursor:
    """Sequential decode of one source, reopened only to go backwards (a retried window): a
    worker that gets every k-th window of a video decodes the video about once."""

    def __init__(self, src: str):
        from ..runtime.video import open_frames
        self.src, self.reader = src, open_frames(src)
        self.it, self.pos = iter(self.reader), 0

    def read(self, start: int, stop: int) -> np.ndarray:
        frames = []
        for _ in range(stop):  # bounded: never more than `stop` frames from the start
            if self.pos >= stop:
                break
            try:
                fr = next(self.it)
            except StopIteration:
                raise InputError(f"{self.src!r} ended at frame {self.pos} on worker {socket.gethostname()}, "
                                 f"the driver read frames up to {stop}")
            if self.pos >= start:
                frames.append(fr.rgb)
            self.pos += 1
        return np.stack(frames)

    def close(self):
        self.reader.close()


class UpscaleWorker:
    def __init__(self, spec: ModelSpec, name: str):
        t0 = time.perf_counter()
        self.name, self.spec = name, spec
        self.base = spec.load()
        self._by_cfg = {spec.run: self.base}
        self._cursors: dict = {}
        self.load_s = time.perf_counter() - t0

    def ready(self) -> dict:
        import torch
        return {"name": self.name, "pid": os.getpid(), "host": socket.gethostname(), "load_s": self.load_s,
                "device": str(self.base.model.device), "threads": torch.get_num_threads()}

    def _upscaler(self, cfg: RunConfig):
        up = self._by_cfg.get(cfg)
        if up is None:  # other settings, same loaded networks
            up = self._by_cfg[cfg] = self.base.with_config(cfg)
        return up

    def process(self, cfg: RunConfig, chunk: np.ndarray, span, float_frames):
        t0 = time.perf_counter()
        # what crosses the network is checked where it arrives: a malformed window is an input error
        if not (isinstance(chunk, np.ndarray) and chunk.dtype == np.uint8 and chunk.ndim == 4
                and chunk.shape[3] == 3 and len(chunk) == span.size):
            raise InputError(f"window {span.start}..{span.stop - 1}: expected uint8 frames [{span.size}, h, w, 3], "
                             f"got {getattr(chunk, 'dtype', type(chunk).__name__)} {getattr(chunk, 'shape', '')}")
        out = self._upscaler(cfg).process_window(chunk, span, float_frames)
        return out, {"worker": self.name, "seconds": time.perf_counter() - t0, "frames": len(chunk)}

    def process_file(self, cfg: RunConfig, src: str, span, float_frames, digest: int | None):
        """The same window, its frames decoded here from a path every node can read."""
        cur = self._cursors.get(src)
        if cur is None or cur.pos > span.start:
            if cur is not None:
                cur.close()
            cur = self._cursors[src] = _Cursor(src)
        chunk = cur.read(span.start, span.stop)
        if digest is not None and chunk_digest(chunk) != digest:
            raise InputError(f"{src!r} decodes differently on worker {self.name} ({socket.gethostname()}) than "
                             f"on the driver (frames {span.start}..{span.stop - 1}): not the same file on every node?")
        for old in [k for k in self._cursors if k != src][:max(0, len(self._cursors) - 4)]:
            self._cursors.pop(old).close()  # keep a few files open, not one per video ever seen
        return self.process(cfg, chunk, span, float_frames)
