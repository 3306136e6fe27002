"""TensorRT's environment: is the package there, which GPU is this, and is the library real.

One home for what both the engine builder (`export/trt.py`) and the runtime backend
(`runtime/trt_backend.py`) ask about the machine, and for `uavrt info`. `tensorrt` is imported
lazily: importing this module never needs TensorRT or a GPU.
"""

from __future__ import annotations

import ctypes
import os

from .errors import BackendUnavailable

INSTALL_HINT = ("pip install tensorrt (TensorRT 11 for CUDA 13); TensorRT also needs an NVIDIA GPU "
                "with a CUDA 13 capable driver")
# what the real libnvinfer exports besides the bindings' entry points (NvInferRuntimeBase.h);
# the test suite's stub libraries export only the 9 entry points the bindings link against
_VERSION_SYMBOL = "getInferLibVersion"


def version_tuple(version: str) -> tuple:
    """'11.4.0.106' -> (11, 4, 0, 106); stops at the first part without digits."""
    out = []
    for part in version.split("."):
        digits = "".join(c for c in part if c.isdigit())
        if not digits:
            break
        out.append(int(digits))
    return tuple(out)


def require_tensorrt():
    """The `tensorrt` module, or BackendUnavailable saying what to install."""
    try:
        import tensorrt
    except Exception as e:  # ImportError, or the PyPI stub failing to fetch the real wheel
        raise BackendUnavailable(f"TensorRT is not available ({type(e).__name__}: {e}): {INSTALL_HINT}") from e
    if version_tuple(tensorrt.__version__) < (10, 1):  # set_device_memory(ptr, size) came with 10.1
        raise BackendUnavailable(f"TensorRT {tensorrt.__version__} is too old: uavrt is written for TensorRT 11 "
                                 f"(10.1 or later may work); {INSTALL_HINT}")
    # an installed module (not a test double) must be backed by the real library: bindings on stub
    # libraries import fine and then fail with "factory function returned nullptr"
    problem = native_library_problem(tensorrt) if getattr(tensorrt, "__file__", None) else None
    if problem:
        raise BackendUnavailable(f"the tensorrt {tensorrt.__version__} Python bindings are not backed by a real "
                                 f"TensorRT library ({problem}): {INSTALL_HINT}")
    return tensorrt


def gpu_identity(device=None) -> tuple:
    """(GPU name, compute capability 'major.minor') of `device` (default: the current CUDA device)."""
    import torch

    if not torch.cuda.is_available():
        raise BackendUnavailable("TensorRT needs an NVIDIA GPU, and torch.cuda.is_available() is False "
                                 "(no GPU, no driver, or a CPU-only torch build)")
    dev = torch.device(device) if device is not None else torch.device("cuda", torch.cuda.current_device())
    major, minor = torch.cuda.get_device_capability(dev)
    return torch.cuda.get_device_name(dev), f"{major}.{minor}"


def loaded_library(soname: str = "libnvinfer.so.11", maps: str = "/proc/self/maps"):
    """Path of the loaded shared library whose file name starts with `soname`'s stem, or None."""
    stem = soname.split(".so")[0] + ".so"
    try:
        with open(maps) as f:
            for line in f:
                path = line.rstrip("\n").split(maxsplit=5)[-1]
                if os.path.basename(path).startswith(stem):
                    return path
    except OSError:
        pass
    return None


def native_library_problem(tensorrt_module) -> str | None:
    """Why the imported `tensorrt` is not backed by a real libnvinfer, or None when it is.

    The Python bindings import against any library exporting their 9 C entry points (that is how
    the test suite reads the real 11.x API on a CPU machine). A real libnvinfer also exports
    getInferLibVersion() (NV_TENSORRT_VERSION: major*10000 + minor*100 + patch), whose major.minor
    must agree with the bindings' version. Only Linux is inspected; elsewhere nothing is claimed.
    """
    if not os.path.exists("/proc/self/maps"):
        return None
    path = loaded_library()
    if path is None:
        return "libnvinfer is not loaded in this process (the bindings did not link a TensorRT library)"
    try:
        lib = ctypes.CDLL(path)  # already loaded: this returns the same handle
        fn = getattr(lib, _VERSION_SYMBOL)
    except (OSError, AttributeError):
        return f"{path} does not export {_VERSION_SYMBOL}(): a stub library, not TensorRT"
    fn.restype = ctypes.c_int32
    have = int(fn())
    v = version_tuple(getattr(tensorrt_module, "__version__", "")) + (0, 0, 0)
    want = v[0] * 10000 + v[1] * 100 + v[2]
    if have // 100 != want // 100:
        return (f"{path} reports TensorRT library version {have}, the Python bindings are "
                f"{tensorrt_module.__version__} (expected {want}): mismatched installation")
    return None
