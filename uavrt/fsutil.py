"""Files: atomic, non-clobbering output (video writing, export, caches), content hashes, the
user cache folder and the process umask, each written once for the whole package.

Temporary outputs are named `.<target name>.partial.<pid>.<random>[suffix]` beside the target:
the pid says which process owns one, so a later run for the same target can remove the temps
of runs that died (SIGKILL, power loss) without ever touching a live run's temp or any file
that does not have exactly this form.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
import re
import shutil
import tempfile
from pathlib import Path

from .errors import ConfigError, OutputExistsError

log = logging.getLogger(__name__)

PARTIAL = ".partial."


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


def check_output_location(path, param: str = "output", folder: bool = False) -> Path:
    """Refuse, before any work, an output that cannot be created: a parent that is a regular
    file, a location that is not writable (e.g. /proc), a folder where a file is wanted.

    Creates nothing; the nearest existing ancestor must be a writable directory.
    """
    p = Path(os.path.abspath(os.fspath(path)))
    if p.exists():
        if folder and not p.is_dir():
            raise ConfigError(param, str(path), "a folder (this path is an existing file, which is never replaced "
                              "by a folder)")
        if not folder and p.is_dir():
            raise ConfigError(param, str(path), "a file name (this path is an existing folder; "
                              "end it with '/' to write PNG frames into a folder)")
    anc = p.parent
    while not anc.exists():
        anc = anc.parent
    if not anc.is_dir():
        raise ConfigError(param, str(path), f"a path inside a folder ({str(anc)!r} is a file, not a folder)")
    if not os.access(anc, os.W_OK | os.X_OK) or _pseudo_fs(anc):
        raise ConfigError(param, str(path), f"a location this user can write ({str(anc)!r} is not writable)")
    return p


def _pseudo_fs(path: Path) -> bool:
    """/proc and /sys accept access() checks for root but not new files."""
    parts = path.resolve().parts
    return len(parts) > 1 and parts[1] in ("proc", "sys")


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except OSError as e:
        return e.errno == errno.EPERM  # exists, owned by another user
    return True


def temp_prefix(target: Path) -> str:
    return f".{target.name}{PARTIAL}{os.getpid()}."


def _stale_temps(target: Path):
    """Temps of `target` left by processes that no longer run (their pid is in the name)."""
    pat = re.compile(re.escape(f".{target.name}{PARTIAL}") + r"(\d+)\.[a-z0-9_]{8}(\.[^/]*)?$")
    try:
        entries = list(target.parent.iterdir())
    except OSError:
        return []
    stale = []
    for e in entries:
        m = pat.match(e.name)
        if m and not _pid_alive(int(m.group(1))):
            stale.append(e)
    return stale


def remove_stale_temps(target, frame_pattern: str = r"frame_\d{6}\.png") -> list:
    """Remove what dead runs left for this target: their temp file, or their temp folder when it
    holds nothing but frame files. Returns what was removed; anything else is left alone."""
    target = Path(target)
    removed = []
    frame_re = re.compile(frame_pattern + "$")
    for e in _stale_temps(target):
        try:
            if e.is_symlink():
                continue
            if e.is_dir():
                if all(frame_re.match(c.name) and c.is_file() and not c.is_symlink() for c in e.iterdir()):
                    shutil.rmtree(e)
                    removed.append(e)
            elif e.is_file():
                e.unlink()
                removed.append(e)
        except OSError as err:  # someone else removed it, or no permission: not ours to fight
            log.debug("stale temp %s left: %s", e, err)
    for e in removed:
        log.warning("removed %s, left by an earlier run of this output that was killed", e)
    return removed


def make_temp(target: Path, suffix: str = "", folder: bool = False) -> Path:
    """A new temp file (or folder) beside `target` in the format remove_stale_temps knows."""
    remove_stale_temps(target)
    if folder:
        tmp = Path(tempfile.mkdtemp(prefix=temp_prefix(target), dir=target.parent))
        os.chmod(tmp, 0o777 & ~umask())  # mkdtemp makes 0700
        return tmp
    fd, tmp = tempfile.mkstemp(prefix=temp_prefix(target), suffix=suffix, dir=target.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~umask())  # mkstemp makes 0600; outputs get the usual permissions
    return Path(tmp)


@contextlib.contextmanager
def atomic_path(path, overwrite: bool = False, suffix: str | None = None):
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds.

    The temporary file lives in the same directory so the final rename is atomic on POSIX; on
    any exception it is removed, so a failed run never leaves a partial output behind.
    `suffix` defaults to the target's suffix so format-sniffing writers (FFmpeg) still work.
    """
    path = check_writable(path, overwrite)
    if path.is_dir():  # os.replace would fail late, or (empty folder) silently drop the folder
        raise ConfigError("output", str(path), "a file name (this path is an existing folder)")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = make_temp(path, path.suffix if suffix is None else suffix)
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


def same_file(a, b) -> bool:
    """True when two paths name the same existing file or folder (links and '..' resolved)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False
