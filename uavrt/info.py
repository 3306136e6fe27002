"""`uavrt info`: what this machine has, and which backends can run here (and why not).

`environment_report()` only observes (versions, devices, memory); `usable_backends(report)` is a
pure function of that report, so the decisions are tested with synthetic reports on any machine.
Every probe is guarded: a broken optional package shows up as an error string, never a crash.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import shutil
import subprocess
import sys

PACKAGES = ("torch", "onnx", "onnxruntime", "onnxruntime-gpu", "tensorrt", "polygraphy", "cuda-bindings",
            "nvidia-cuda-nvrtc", "safetensors", "av", "transformers", "numpy")


def cpu_model() -> str:
    """CPU model name from /proc/cpuinfo (Linux), else what `platform` knows."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def package_version(name: str):
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _error(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}".strip()[:300]


def _torch_info() -> dict:
    import torch

    info = {"version": torch.__version__, "cuda_build": torch.version.cuda, "cuda_available": False,
            "devices": []}
    try:
        info["cuda_available"] = bool(torch.cuda.is_available())
        for i in range(torch.cuda.device_count() if info["cuda_available"] else 0):
            p = torch.cuda.get_device_properties(i)
            info["devices"].append({"index": i, "name": p.name, "compute_capability": f"{p.major}.{p.minor}",
                                    "memory_gib": round(p.total_memory / 2**30, 2)})
    except Exception as e:  # a driver/runtime mismatch raises here rather than returning False
        info["cuda_error"] = _error(e)
    return info


def _onnxruntime_info() -> dict:
    try:
        import onnxruntime
    except Exception as e:
        return {"version": None, "providers": [], "error": _error(e)}
    return {"version": onnxruntime.__version__, "providers": list(onnxruntime.get_available_providers())}


def _tensorrt_info() -> dict:
    try:
        import tensorrt
    except Exception as e:
        return {"version": None, "error": _error(e)}
    from .trt_env import native_library_problem

    info = {"version": tensorrt.__version__}
    try:
        problem = native_library_problem(tensorrt)
    except Exception as e:  # a probe must never crash the report
        problem = f"could not inspect the TensorRT library: {_error(e)}"
    if problem:
        info["library_problem"] = problem  # e.g. the test suite's stub libraries: not a TensorRT
    return info


def _nvrtc_info() -> dict:
    try:
        from cuda.bindings import nvrtc
        err, major, minor = nvrtc.nvrtcVersion()
        if int(err) != 0:
            return {"version": None, "error": f"nvrtcVersion returned {err}"}
        return {"version": f"{major}.{minor}"}
    except Exception as e:
        return {"version": None, "error": _error(e)}


def _compiler_info() -> dict:
    path = shutil.which("g++")
    if path is None:
        return {"path": None, "version": None}
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=20)
        return {"path": path, "version": out.stdout.splitlines()[0] if out.stdout else None}
    except Exception as e:
        return {"path": path, "version": None, "error": _error(e)}


def _host_memory_gib():
    try:
        import psutil
        return round(psutil.virtual_memory().total / 2**30, 2)
    except Exception:
        return None


def environment_report() -> dict:
    """Versions and devices: python, torch (+CUDA, GPUs), onnxruntime (+providers), TensorRT,
    Polygraphy, cuda-bindings, NVRTC, g++, host CPU and memory."""
    from . import __version__

    return {
        "uavrt": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "host_memory_gib": _host_memory_gib(),
        "packages": {name: package_version(name) for name in PACKAGES},
        "torch": _torch_info(),
        "onnxruntime": _onnxruntime_info(),
        "tensorrt": _tensorrt_info(),
        "nvrtc": _nvrtc_info(),
        "gxx": _compiler_info(),
    }


def usable_backends(report: dict | None = None) -> dict:
    """{backend: (usable, reason)} for torch-cpu/-cuda, onnxruntime-cpu/-cuda, tensorrt, kernel-cpu/-cuda."""
    r = report if report is not None else environment_report()
    t, ort, trt, nvrtc, gxx = r["torch"], r["onnxruntime"], r["tensorrt"], r["nvrtc"], r["gxx"]
    gpu = t.get("cuda_available", False)
    if gpu and t.get("devices"):
        d = t["devices"][0]
        gpu_why = f"{d['name']} (compute capability {d['compute_capability']}, {d['memory_gib']} GiB)"
    elif t.get("cuda_build") is None:
        gpu_why = f"torch {t['version']} is a CPU-only build"
    else:
        gpu_why = "no CUDA GPU visible (torch.cuda.is_available() is False)" + (
            f": {t['cuda_error']}" if t.get("cuda_error") else "")
    providers = ort.get("providers", [])
    out = {"torch-cpu": (True, f"torch {t['version']}"),
           "torch-cuda": (bool(gpu), gpu_why)}
    if ort.get("version") is None:
        why = f"onnxruntime is not installed (pip install onnxruntime or onnxruntime-gpu): {ort.get('error', '')}"
        out["onnxruntime-cpu"] = out["onnxruntime-cuda"] = (False, why)
    else:
        out["onnxruntime-cpu"] = ("CPUExecutionProvider" in providers,
                                  f"onnxruntime {ort['version']}, providers {', '.join(providers)}")
        if "CUDAExecutionProvider" not in providers:
            out["onnxruntime-cuda"] = (False, "CUDAExecutionProvider missing (pip install onnxruntime-gpu)")
        else:
            out["onnxruntime-cuda"] = (bool(gpu), gpu_why if not gpu else f"CUDAExecutionProvider on {gpu_why}")
    if trt.get("version") is None:
        out["tensorrt"] = (False, "TensorRT is not installed: pip install tensorrt (TensorRT 11, CUDA 13); "
                                  "it also needs an NVIDIA GPU")
    elif trt.get("library_problem"):
        out["tensorrt"] = (False, f"the tensorrt {trt['version']} Python bindings are not backed by a real "
                                  f"TensorRT library: {trt['library_problem']}")
    elif not gpu:
        out["tensorrt"] = (False, f"TensorRT {trt['version']} is installed but needs a GPU: {gpu_why}")
    else:
        out["tensorrt"] = (True, f"TensorRT {trt['version']} on {gpu_why}")
    out["kernel-cpu"] = ((True, f"g++ at {gxx['path']} ({gxx.get('version')})") if gxx.get("path")
                         else (False, "g++ not found: install a C++ compiler (e.g. apt-get install g++)"))
    if nvrtc.get("version") is None:
        out["kernel-cuda"] = (False, "NVRTC unavailable (pip install cuda-bindings nvidia-cuda-nvrtc): "
                                     f"{nvrtc.get('error', '')}")
    else:
        out["kernel-cuda"] = (bool(gpu), f"NVRTC {nvrtc['version']}; " + gpu_why)
    return out


def format_report(report: dict | None = None, backends: dict | None = None) -> str:
    """Plain-text report for `uavrt info`."""
    r = report if report is not None else environment_report()
    b = backends if backends is not None else usable_backends(r)
    t = r["torch"]
    lines = [f"uavrt {r['uavrt']}  python {r['python']}  {r['platform']}",
             f"host: {r['cpu_count']} CPUs, {r['host_memory_gib']} GiB memory",
             f"torch {t['version']} (CUDA build {t['cuda_build']}), CUDA available: {t['cuda_available']}"]
    for d in t.get("devices", []):
        lines.append(f"  cuda:{d['index']} {d['name']}  compute capability {d['compute_capability']}  "
                     f"{d['memory_gib']} GiB")
    ort = r["onnxruntime"]
    lines.append(f"onnxruntime {ort.get('version')}  providers: {', '.join(ort.get('providers', [])) or '-'}")
    lines.append(f"tensorrt {r['tensorrt'].get('version')}  polygraphy {r['packages'].get('polygraphy')}  "
                 f"cuda-bindings {r['packages'].get('cuda-bindings')}  NVRTC {r['nvrtc'].get('version')}")
    lines.append(f"g++: {r['gxx'].get('version') or 'not found'}")
    lines.append("packages: " + ", ".join(f"{k} {v}" for k, v in r["packages"].items() if v))
    lines.append("backends:")
    width = max(len(k) for k in b)
    for name, (ok, why) in b.items():
        lines.append(f"  {name:<{width}}  {'yes' if ok else 'no '}  {why}")
    return "\n".join(lines)
