"""Resumable jobs: finished windows kept on disk beside the output, reloaded after a crash.

A job folder (default `<output>.uavrt-job/`) holds `job.json` (the job's key: everything that
changes the result) and one `window_<start>_<stop>.npz` per finished window (its WindowOutput:
uint8 frames plus the float frames a cross-fade needs, and a sha256 over all of them). It plugs
into runtime/stream.windowed as a `submit` wrapper: a window already on disk is loaded instead
of computed, every computed window is written (temp file, fsync, rename) before it is merged.
A killed job (SIGKILL, OOM, power loss) thus loses at most the windows in flight; the output
file is still written atomically by the encoder, so a resumed run re-encodes every frame from
the stored windows and the result is the same frames as an uninterrupted run.

A window file that is half-written, truncated or fails its checksum is deleted and computed
again. A job folder whose key differs from this run's (other input, setting, weights, version)
is refused with ConfigError naming the first field that changed: its windows belong to another
result. One process at a time holds a job (an flock on `lock`, released by the kernel when the
process dies).
"""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import json
import logging
import os
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Callable

import numpy as np

from .. import __version__
from ..errors import ConfigError, InputError
from ..fsutil import umask
from .plan import Span
from .stream import Done, WindowOutput

log = logging.getLogger(__name__)

JOB_FORMAT = 1
KEY_FILE = "job.json"
_EDGE = 1 << 20  # bytes hashed at each end of the input (identity beyond size and mtime)


def default_job_dir(output) -> Path:
    """`<output>.uavrt-job` beside the output (a folder output: beside the folder)."""
    p = Path(str(output).rstrip("/" + os.sep) or str(output))
    return p.with_name(p.name + ".uavrt-job")


def input_identity(src) -> dict:
    """Size, mtime and a sha256 of the first and last MiB (a full hash of a film would take
    minutes at every start; these catch a re-encode or an edit of the same name)."""
    src = Path(src)
    if src.is_dir():  # an image folder: every file's name, size and mtime
        files = sorted(p for p in src.iterdir() if p.is_file())
        listing = [(p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in files]
        return {"path": str(src.resolve()), "files_sha256": hashlib.sha256(repr(listing).encode()).hexdigest()}
    st = src.stat()
    h = hashlib.sha256()
    with open(src, "rb") as f:
        h.update(f.read(_EDGE))
        if st.st_size > _EDGE:
            f.seek(max(_EDGE, st.st_size - _EDGE))
            h.update(f.read(_EDGE))
    return {"path": str(src.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns, "edges_sha256": h.hexdigest()}


def _engines_identity(engines) -> str | None:
    if not engines:
        return None
    root = Path(engines)
    if not root.is_dir():
        return str(engines)
    manifest = root / "manifest.json"  # TensorRT: lists every plan's sha256
    if manifest.is_file():
        return hashlib.sha256(manifest.read_bytes()).hexdigest()
    listing = [(p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(root.iterdir()) if p.is_file()]
    return hashlib.sha256(repr(listing).encode()).hexdigest()


def _flatten(prefix: str, value, out: dict) -> dict:
    if dataclasses.is_dataclass(value):
        value = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        for k, v in value.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
    else:
        out[prefix] = list(value) if isinstance(value, tuple) else value
    return out


def job_key(src, cfg, model_info: dict, segment=None) -> dict:
    """Every field that changes the windows' results, flattened to 'group.name' -> JSON value:
    the input's identity, every RunConfig setting, the model's identity (weights hashes, backend,
    precision, device, engines), the segment and the uavrt version."""
    key = {"uavrt_version": __version__, "job_format": JOB_FORMAT}
    _flatten("input", input_identity(src), key)
    _flatten("run", cfg, key)
    info = {k: v for k, v in model_info.items() if k != "weights"}  # the folder's name is not its content
    info["engines"] = _engines_identity(info.get("engines"))
    _flatten("model", info, key)
    _flatten("segment", segment if segment is not None else {}, key)
    return json.loads(json.dumps(key, default=str))  # exactly what job.json will hold


class JobState:
    """An open job folder. `submit(inner)` wraps a windowed() submit; `remove()` on success."""

    def __init__(self, root: Path, key: dict, lock_fd: int, resumed: int):
        self.root, self.key, self._lock_fd = root, key, lock_fd
        self.resumed = resumed  # windows found on disk when opened
        self.loaded = self.computed = self.redone = 0

    @classmethod
    def open(cls, root, key: dict, *, mode: str = "auto") -> "JobState":
        """mode: "auto" (continue a matching job, else start one), "resume" (a job must exist),
        "restart" (discard any job state first)."""
        if mode not in ("auto", "resume", "restart"):
            raise ConfigError("resume", mode, "'auto', 'resume' or 'restart'")
        root = Path(root)
        if root.exists() and not root.is_dir():
            raise ConfigError("job_dir", str(root), "a folder (or a path where one can be created)")
        if mode == "resume" and not (root / KEY_FILE).is_file():
            raise ConfigError("--resume", str(root), "an existing job folder (none found: run without --resume "
                              "to start the job)")
        root.mkdir(parents=True, exist_ok=True)
        fd = os.open(root / "lock", os.O_RDWR | os.O_CREAT, 0o666 & ~umask())
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise InputError(f"job folder {str(root)!r} is in use by another uavrt process") from None
        try:
            if mode == "restart":
                cls._clear(root)
            key_file = root / KEY_FILE
            if key_file.is_file():
                try:
                    old = json.loads(key_file.read_text())
                except (OSError, ValueError):
                    old = None
                if not isinstance(old, dict):
                    log.warning("%s: unreadable %s; starting the job again", root, KEY_FILE)
                    cls._clear(root)
                else:
                    cls._check(root, old, key)
            if not key_file.is_file():
                cls._clear(root)
                _atomic_write(key_file, json.dumps(key, indent=1, sort_keys=True).encode())
            for tmp in root.glob(".*.tmp"):  # a save the killed process never finished
                tmp.unlink(missing_ok=True)
            resumed = len(list(root.glob("window_*.npz")))
        except BaseException:
            os.close(fd)
            raise
        return cls(root, key, fd, resumed)

    @staticmethod
    def _check(root: Path, old: dict, new: dict) -> None:
        for field in sorted(set(old) | set(new)):
            if old.get(field, "<absent>") != new.get(field, "<absent>"):
                raise ConfigError(field, new.get(field), f"{old.get(field, '<absent>')!r}, the value the job in "
                                  f"{str(root)!r} was started with (pass --restart to discard its finished "
                                  "windows, or rerun with the job's settings)")

    @staticmethod
    def _clear(root: Path) -> None:
        for p in root.iterdir():
            if p.name != "lock" and p.is_file():
                p.unlink()

    # --- windows ------------------------------------------------------------------------------
    def window_path(self, span: Span) -> Path:
        return self.root / f"window_{span.start:09d}_{span.stop:09d}.npz"

    def load(self, span: Span, float_frames) -> WindowOutput | None:
        """The stored window, or None when absent, damaged or missing a float frame asked for."""
        path = self.window_path(span)
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as z:
                frames = z["frames"]
                keys = [int(k) for k in z["blend_keys"]]
                blend = {k: z[f"blend_{k}"] for k in keys}
                stored = str(z["sha256"])
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
            return self._redo(path, f"unreadable ({type(e).__name__}: {e})")
        if stored != _digest(span, frames, blend):
            return self._redo(path, "checksum mismatch")
        if frames.shape[0] != span.size or not set(float_frames) <= set(blend):
            return self._redo(path, "does not hold what this run needs")
        self.loaded += 1
        return WindowOutput(span, frames, {f: blend[f] for f in float_frames})

    def _redo(self, path: Path, why: str):
        log.warning("%s: %s; the window is computed again", path, why)
        path.unlink(missing_ok=True)
        self.redone += 1
        return None

    def save(self, out: WindowOutput) -> None:
        span = out.span
        arrays = {"frames": out.frames, "blend_keys": np.array(sorted(out.blend), np.int64),
                  "sha256": np.array(_digest(span, out.frames, out.blend))}
        arrays.update({f"blend_{k}": v for k, v in out.blend.items()})
        path = self.window_path(span)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".tmp", dir=self.root)
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, **arrays)  # uncompressed: cheap next to the window's denoising
                f.flush()
                os.fsync(f.fileno())  # the rename must not land before the data (power loss)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        _fsync_dir(self.root)
        self.computed += 1

    def submit(self, inner: Callable, progress: Callable | None = None) -> Callable:
        """A windowed() submit: stored windows are loaded, the others go to `inner` and are saved
        when their result arrives (before windowed merges them)."""
        def submit(chunk, span, float_frames):
            out = self.load(span, float_frames)
            if out is not None:
                if progress:
                    progress("window_resumed", span.start, span.stop)
                    progress("frames", span.stop, None)
                return Done(out)
            return _Saving(inner(chunk, span, float_frames), self)
        return submit

    # --- end of the job -----------------------------------------------------------------------
    def close(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def remove(self) -> None:
        """The output is complete: the job state is no longer needed."""
        self.close()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


class _Saving:
    def __init__(self, handle, job: JobState):
        self._handle, self._job, self._out = handle, job, None

    def result(self) -> WindowOutput:
        if self._out is None:
            self._out = self._handle.result()
            self._job.save(self._out)
        return self._out


def _digest(span: Span, frames: np.ndarray, blend: dict) -> str:
    h = hashlib.sha256(f"{span.start}:{span.stop}:{frames.dtype}:{frames.shape}".encode())
    h.update(np.ascontiguousarray(frames).data)
    for k in sorted(blend):
        v = np.ascontiguousarray(blend[k])
        h.update(f"|{k}:{v.dtype}:{v.shape}".encode())
        h.update(v.data)
    return h.hexdigest()


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    _fsync_dir(path.parent)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
