"""NVRTC compilation of propagate.cu to CUBIN (real SASS for one architecture, not PTX).

CUBIN rather than PTX: PTX from a newer NVRTC than the driver cannot be JIT-loaded (the target
GPUs run a CUDA 13.0 driver), while a CUBIN for the exact sm_XY loads on any driver of the same
major version. CUBINs are cached on disk keyed by source hash + arch + NVRTC version.
No GPU is needed to compile.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

from ..errors import BackendUnavailable, ConfigError
from . import cache

CU_SOURCES = ("propagate.h", "propagate.cu")
# --fmad=false: keep a*b+c as two roundings, like the CPU reference (see propagate.h).
NVRTC_OPTIONS = ("--std=c++17", "--fmad=false")
_PIP_HINT = "pip install cuda-bindings nvidia-cuda-nvrtc"


def _nvrtc():
    try:
        from cuda.bindings import nvrtc
    except ImportError as e:
        raise BackendUnavailable(f"the CUDA propagation kernel needs NVRTC via cuda-bindings: {_PIP_HINT} ({e})") from e
    return nvrtc


def _ok(result, what: str):
    """cuda-bindings calls return (status, *values): raise on error, return the values."""
    nvrtc = _nvrtc()
    status, *values = result
    if status != nvrtc.nvrtcResult.NVRTC_SUCCESS:
        _, msg = nvrtc.nvrtcGetErrorString(status)
        raise RuntimeError(f"{what} failed: {msg.decode() if isinstance(msg, bytes) else msg}")
    return values[0] if len(values) == 1 else values


def nvrtc_version() -> str:
    nvrtc = _nvrtc()
    try:
        result = nvrtc.nvrtcVersion()
    except Exception as e:  # libnvrtc not found by cuda-bindings' loader
        raise BackendUnavailable(f"NVRTC could not be loaded ({e}); {_PIP_HINT}") from e
    major, minor = _ok(result, "nvrtcVersion")
    return f"{major}.{minor}"


def supported_archs() -> list[str]:
    nvrtc = _nvrtc()
    nvrtc_version()  # raises BackendUnavailable when the library is missing
    return [f"sm_{a}" for a in _ok(nvrtc.nvrtcGetSupportedArchs(), "nvrtcGetSupportedArchs")]


def normalize_arch(arch) -> str:
    """'sm_90' | '90' | '9.0' | (9, 0) -> 'sm_90' (validated against this NVRTC)."""
    if isinstance(arch, tuple) and len(arch) == 2:
        text = f"sm_{arch[0]}{arch[1]}"
    else:
        s = str(arch).strip().lower()
        m = re.fullmatch(r"(?:sm_?)?(\d+)(?:\.(\d))?", s)
        text = f"sm_{m.group(1)}{m.group(2) or ''}" if m else s
    allowed = supported_archs()
    if text not in allowed:
        raise ConfigError("arch", arch, "one of " + ", ".join(allowed) + " (this NVRTC's real architectures)")
    return text


def _cuda_include_dir() -> str:
    """Directory of cuda_fp16.h (CUDA runtime headers), found by cuda-pathfinder."""
    try:
        from cuda.pathfinder import find_nvidia_header_directory
    except ImportError as e:
        raise BackendUnavailable(f"cuda-pathfinder is missing ({e}); {_PIP_HINT}") from e
    inc = find_nvidia_header_directory("cudart")
    if inc is None or not (Path(inc) / "cuda_fp16.h").exists():
        raise BackendUnavailable("the CUDA runtime headers (cuda_fp16.h) were not found; "
                                 "pip install nvidia-cuda-runtime (or install the CUDA toolkit)")
    return str(inc)


def compile_cubin_uncached(arch: str) -> bytes:
    """Run NVRTC on propagate.cu for `arch` ('sm_XY'); return the CUBIN (ELF) bytes."""
    nvrtc = _nvrtc()
    src = cache.source_text("propagate.cu")
    prog = _ok(nvrtc.nvrtcCreateProgram(src, b"propagate.cu", 0, [], []), "nvrtcCreateProgram")
    try:
        opts = [f"--gpu-architecture={arch}", *NVRTC_OPTIONS,
                f"-I{cache.KERNEL_DIR}", f"-I{_cuda_include_dir()}"]
        status, = nvrtc.nvrtcCompileProgram(prog, len(opts), [o.encode() for o in opts])
        if status != nvrtc.nvrtcResult.NVRTC_SUCCESS:
            size = _ok(nvrtc.nvrtcGetProgramLogSize(prog), "nvrtcGetProgramLogSize")
            log = b" " * size
            _ok(nvrtc.nvrtcGetProgramLog(prog, log), "nvrtcGetProgramLog")
            raise RuntimeError(f"NVRTC failed to compile propagate.cu for {arch}:\n{log.decode(errors='replace')}")
        size = _ok(nvrtc.nvrtcGetCUBINSize(prog), "nvrtcGetCUBINSize")
        cubin = b" " * size
        _ok(nvrtc.nvrtcGetCUBIN(prog, cubin), "nvrtcGetCUBIN")
        return cubin
    finally:
        nvrtc.nvrtcDestroyProgram(prog)


def cubin_path(arch: str) -> Path:
    key = cache.source_hash(CU_SOURCES, " ".join(NVRTC_OPTIONS), arch, nvrtc_version())
    return cache.cache_dir() / f"propagate-{arch}-nvrtc{nvrtc_version()}-{key}.cubin"


def cubin_for(arch: str) -> bytes:
    """The CUBIN for `arch`, from the disk cache or compiled (and cached) now."""
    arch = normalize_arch(arch)
    path = cubin_path(arch)
    if path.exists():
        return path.read_bytes()
    cubin = compile_cubin_uncached(arch)
    cache.store(path, cubin)
    return cubin


def compile_kernels(archs: list[str]) -> list[dict]:
    """Compile (and cache) the CUDA kernels for each arch, e.g. ['sm_80', 'sm_90'].

    Returns one dict per arch: {'arch', 'cubin' (bytes), 'seconds' (NVRTC time), 'path', 'nvrtc'}.
    Always compiles (it is the explicit "warm the cache" command) and replaces the cached entry.
    """
    if isinstance(archs, str):
        archs = [a for a in archs.split(",") if a.strip()]
    if not archs:
        raise ConfigError("archs", archs, "a non-empty list such as ['sm_80', 'sm_90']")
    results = []
    for arch in [normalize_arch(a) for a in archs]:
        t0 = time.perf_counter()
        cubin = compile_cubin_uncached(arch)
        seconds = time.perf_counter() - t0
        path = cache.store(cubin_path(arch), cubin)
        results.append({"arch": arch, "cubin": cubin, "seconds": seconds, "path": str(path),
                        "nvrtc": nvrtc_version()})
    return results
