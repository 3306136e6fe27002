"""Files: atomic, non-clobbering output (video writing, export, caches), content hashes, the
user cache folder and the process umask, each written once for the whole package."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
from pathlib import Path

from .errors import OutputExistsError


def sha256_file(path, chunk: int = 1 << 22) -> str:
    """Hex sha256 of a file's bytes, read in 4 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def cache_root() -> Path:
    """uavrt's user cache: `$UAVRT_CACHE_DIR`, default `~/.cache/uavrt` (read at call time)."""
    root = os.environ.get("UAVRT_CACHE_DIR")
    return Path(root).expanduser() if root else Path.home() / ".cache" / "uavrt"


def umask() -> int:
    """The process umask, read without changing it (os.umask() would race other threads)."""
    try:
        m = re.search(r"^Umask:\s*([0-7]+)", Path("/proc/self/status").read_text(), re.MULTILINE)
        if m:
            return int(m.group(1), 8)
    except OSError:
        pass
    return 0o022


def check_writable(path, overwrite: bool) -> Path:
    """Fail early (before any work) when `path` exists and overwrite was not asked for."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise OutputExistsError(path)
    return path


@contextlib.contextmanager
def atomic_path(path, overwrite: bool = False, suffix: str | None = None):
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds.

    The temporary file lives in the same directory so the final rename is atomic on POSIX; on
    any exception it is removed, so a failed run never leaves a partial output behind.
    `suffix` defaults to the target's suffix so format-sniffing writers (FFmpeg) still work.
    """
    path = check_writable(path, overwrite)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.partial.", suffix=path.suffix if suffix is None else suffix,
                               dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    os.chmod(tmp, 0o666 & ~umask())  # mkstemp makes 0600; outputs get the usual permissions
    try:
        yield tmp
        if path.exists() and not overwrite:  # appeared while we worked: still never clobber
            raise OutputExistsError(path)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write_bytes(path, data: bytes, overwrite: bool = False) -> Path:
    with atomic_path(path, overwrite) as tmp:
        tmp.write_bytes(data)
    return Path(path)
