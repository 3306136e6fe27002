"""One home for device names: every backend and the upscaler resolve devices here.

`torch.device("cuda") == torch.device("cuda:0")` is False, while every CUDA tensor reports its
index (`cuda:0`). A runner that kept the bare name would refuse its own inputs, and copies to the
bare name fail under FakeTensorMode (the CPU dry run). So accelerator devices always carry an
explicit index: the current device's when torch can ask the driver, else 0 (what a tensor created
on the bare name reports on a CPU-only build under fake mode). `cpu` stays index-less, as CPU
tensors report it.
"""

from __future__ import annotations

import torch

from .errors import ConfigError

DEVICE_TYPES = ("cpu", "cuda", "meta")


def resolve_device(device) -> torch.device:
    """'cuda' -> cuda:<current>, 'cuda:1' -> cuda:1, 'cpu' -> cpu; an unknown name -> ConfigError."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise ConfigError("device", device, "cpu, cuda or cuda:N") from e
    if dev.type not in DEVICE_TYPES:
        raise ConfigError("device", device, "cpu, cuda or cuda:N")
    if dev.type == "cuda" and dev.index is None:
        index = torch.cuda.current_device() if torch.cuda.is_available() else 0
        return torch.device("cuda", index)
    return dev
