"""CPU build of the kernels: propagate.h + propagate_host.cpp compiled by g++, loaded by ctypes.

The library is built at first use into the kernel cache (keyed by source hash, flags, compiler
version and machine) and reused afterwards. Only contiguous CPU tensors reach these functions;
validation is done by the public API.
"""

from __future__ import annotations

import ctypes
import functools
import platform
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import BackendUnavailable
from ..fsutil import atomic_path
from . import abi, cache

ABI_VERSION = 1
# -ffp-contract=off: no FMA contraction (aarch64 g++ contracts by default); see propagate.h.
CXXFLAGS = ("-O2", "-shared", "-fPIC", "-std=c++17", "-ffp-contract=off", "-fno-fast-math")
HOST_SOURCES = ("propagate.h", "propagate_host.cpp")


@dataclass(frozen=True)
class HostBuild:
    path: Path
    compiled: bool  # False when the cached library was reused
    seconds: float


def _compiler() -> tuple[str, str]:
    cxx = shutil.which("g++")
    if cxx is None:
        raise BackendUnavailable(
            "the CPU propagation kernel needs a C++ compiler: g++ was not found on PATH "
            "(install it, e.g. `apt-get install g++`, or run propagation on a CUDA tensor)")
    version = subprocess.run([cxx, "--version"], capture_output=True, text=True, check=False).stdout
    return cxx, version.splitlines()[0] if version else "unknown"


def build_host_library(cache_root: Path | None = None) -> HostBuild:
    """Compile the host library unless the cache already holds it; return where it is."""
    return build_library("propagate_host.cpp", HOST_SOURCES, cache_root)


def build_library(cpp: str, sources: tuple[str, ...], cache_root: Path | None = None) -> HostBuild:
    """g++-compile kernel source `cpp` (depending on `sources`, all in this folder) into a shared
    library in the kernel cache, unless it is there already. Also builds the emulator's library."""
    cxx, version = _compiler()
    key = cache.source_hash(sources, " ".join(CXXFLAGS), version, platform.machine(), f"abi{ABI_VERSION}")
    out_dir = cache_root if cache_root is not None else cache.cache_dir()
    path = out_dir / f"{Path(cpp).stem}-{platform.machine()}-{key}.so"
    if path.exists():
        return HostBuild(path, False, 0.0)
    t0 = time.perf_counter()
    with atomic_path(path, overwrite=True, suffix=".so") as tmp:
        cmd = [cxx, *CXXFLAGS, "-I", str(cache.KERNEL_DIR), str(cache.KERNEL_DIR / cpp), "-o", str(tmp)]
        res = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if res.returncode != 0:
            raise BackendUnavailable(f"compiling the CPU propagation kernel failed ({' '.join(cmd)}):\n"
                                     f"{res.stderr.strip()[-4000:]}")
    return HostBuild(path, True, time.perf_counter() - t0)


@functools.cache
def _load(path: str) -> ctypes.CDLL:
    lib = ctypes.CDLL(path)
    if lib.uav_abi_version() != ABI_VERSION:
        raise BackendUnavailable(f"{path} has kernel ABI {lib.uav_abi_version()}, expected {ABI_VERSION}; "
                                 "delete it to rebuild")
    for name, types in abi.SIGNATURES.items():
        getattr(lib, name).argtypes = list(types)
    lib.uav_f32_to_f16.argtypes = [abi.P, abi.P, abi.L]
    lib.uav_f16_to_f32.argtypes = [abi.P, abi.P, abi.L]
    return lib


def library() -> ctypes.CDLL:
    """The loaded host library (built on first use; looked up once per process and cache dir)."""
    return _library_in(str(cache.cache_dir()))


@functools.cache
def _library_in(cache_root: str) -> ctypes.CDLL:
    return _load(str(build_host_library(Path(cache_root)).path))


# --- launchers: the argument lists come from abi.py (shared with gpu.py) ------------------------

def _run(call: abi.Call) -> None:
    getattr(library(), call.name)(*call.args)


def step(y: torch.Tensor, prev_t: int, cur_t: int, flow: torch.Tensor, check: torch.Tensor, flow_t: int, *,
         nearest: bool, copy: bool, fuse_w: float, fuse_c: float, alpha1: float, alpha2: float) -> None:
    """y[:, :, cur_t] <- one propagation step (see abi.step_call); CPU tensors."""
    _run(abi.step_call(y, prev_t, cur_t, flow, check, flow_t, nearest=nearest, copy=copy, fuse_w=fuse_w,
                       fuse_c=fuse_c, alpha1=alpha1, alpha2=alpha2))


def flow_warp(x: torch.Tensor, flow: torch.Tensor, nearest: bool) -> torch.Tensor:
    """x: [N, C, H, W] contiguous; flow: [N, 2, H, W] contiguous float32 -> [N, C, H, W]."""
    out = torch.empty_like(x)
    _run(abi.warp_call(x, out, flow, nearest))
    return out


def fb_check(fw: torch.Tensor, bw: torch.Tensor, alpha1: float, alpha2: float) -> torch.Tensor:
    """fw, bw: [N, 2, H, W] contiguous float32 -> [N, 1, H, W] float32 0/1."""
    N, _, H, W = fw.shape
    mask = torch.empty((N, 1, H, W), dtype=torch.float32)
    _run(abi.check_call(fw, bw, mask, alpha1, alpha2))
    return mask


def float_to_half_bits(x: torch.Tensor) -> torch.Tensor:
    """The host build's float32 -> float16 rounding (as int16 bits); for tests."""
    x = x.contiguous()
    out = torch.empty(x.shape, dtype=torch.int16)
    library().uav_f32_to_f16(x.data_ptr(), out.data_ptr(), x.numel())
    return out


def half_bits_to_float(h: torch.Tensor) -> torch.Tensor:
    h = h.contiguous()
    out = torch.empty(h.shape, dtype=torch.float32)
    library().uav_f16_to_f32(h.data_ptr(), out.data_ptr(), h.numel())
    return out
