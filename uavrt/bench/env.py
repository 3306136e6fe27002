"""The machine and software a result was measured on (every result line carries it)."""

from __future__ import annotations

import os
import platform
import sys

import torch

from ..info import cpu_model, package_version  # noqa: F401  (cpu_model: re-exported for results)

PACKAGES = ("torch", "onnxruntime", "onnxruntime-gpu", "tensorrt", "numpy", "av", "transformers")


def gpu_info(device) -> tuple:
    """(name, None) for a CUDA device, or (None, why there is none)."""
    device = torch.device(device)
    if device.type != "cuda":
        return None, f"device is {device.type}"
    if not torch.cuda.is_available():
        return None, "torch.cuda.is_available() is False"
    return torch.cuda.get_device_name(device), None


def environment(device="cpu") -> dict:
    from .. import __version__
    gpu, gpu_why = gpu_info(device)
    try:
        import psutil
        physical = psutil.cpu_count(logical=False)
        mem_gib = round(psutil.virtual_memory().total / 2**30, 1)
    except Exception:
        physical, mem_gib = None, None
    env = {
        "uavrt": __version__, "python": sys.version.split()[0], "platform": platform.platform(),
        "packages": {k: v for k in PACKAGES if (v := package_version(k))},
        "cpu_model": cpu_model(), "cpu_logical_cores": os.cpu_count(), "cpu_physical_cores": physical,
        "torch_threads": torch.get_num_threads(), "host_memory_gib": mem_gib,
        "gpu": gpu, "gpu_why": gpu_why,
        # other processes compete for the cores: a load above the core count inflates CPU timings
        "load_avg_1m": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
    }
    if gpu is not None:
        p = torch.cuda.get_device_properties(torch.device(device))
        env.update(gpu_memory_gib=round(p.total_memory / 2**30, 1), gpu_capability=f"{p.major}.{p.minor}",
                   cuda=torch.version.cuda)
    return env


def machine_name(env: dict) -> str:
    """One line naming the machine, for result files."""
    cores = f"{env['cpu_logical_cores']} logical cores"
    if env.get("cpu_physical_cores"):
        cores += f" ({env['cpu_physical_cores']} physical)"
    gpu = env["gpu"] or "no GPU"
    return f"{env['cpu_model']}, {cores}, {env['host_memory_gib']} GiB RAM, {gpu}"


def machine_tag(env: dict) -> str:
    """A short file-name tag for the machine, e.g. 'cpu-amd-epyc-2c' or 'nvidia-h100-80gb-hbm3'."""
    import re
    name = env["gpu"] or f"cpu-{env['cpu_model']}-{env['cpu_logical_cores']}c"
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
