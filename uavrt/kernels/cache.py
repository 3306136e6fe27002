"""On-disk cache of compiled kernels (host shared library, CUBINs).

Entries are named by what produced them (source hash + target + compiler version), so a stale
entry is never reused: a changed source, flag or compiler gives a new name. Writes go to a
temporary file beside the entry and are renamed into place, so concurrent processes never see a
half-written library or CUBIN (the last writer wins with identical bytes).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from ..fsutil import atomic_write_bytes, cache_root

KERNEL_DIR = Path(__file__).resolve().parent


def cache_dir() -> Path:
    """`$UAVRT_CACHE_DIR/kernels`, default `~/.cache/uavrt/kernels` (read at call time)."""
    return cache_root() / "kernels"


def source_text(name: str) -> bytes:
    return (KERNEL_DIR / name).read_bytes()


def source_hash(names, *extra: str) -> str:
    """Hex digest over the named kernel sources and any extra strings (flags, versions)."""
    h = hashlib.sha256()
    for name in names:
        h.update(name.encode() + b"\0" + source_text(name) + b"\0")
    for e in extra:
        h.update(e.encode() + b"\0")
    return h.hexdigest()[:20]


def store(path: Path, data: bytes) -> Path:
    """Write `data` at `path` atomically (replacing an entry another process just wrote)."""
    return atomic_write_bytes(path, data, overwrite=True)
