"""Device names -> torch.device with an explicit index.

Tensors on a GPU report `cuda:0`, and `torch.device("cuda:0") != torch.device("cuda")`, so every
device a runner, a model or a buffer compares against is resolved here once.
"""

from __future__ import annotations

import torch

from .errors import ConfigError

DEVICE_TYPES = ("cpu", "cuda")


def resolve_device(device) -> torch.device:
    """'cpu' -> cpu; 'cuda' -> cuda:<current device> (cuda:0 without a usable CUDA runtime, as in
    a fake-CUDA trace); 'cuda:N' -> cuda:N. Other types are refused naming the value."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ConfigError("device", device, "'cpu', 'cuda' or 'cuda:N'") from None
    if dev.type not in DEVICE_TYPES:
        raise ConfigError("device", device, "'cpu', 'cuda' or 'cuda:N'")
    if dev.type == "cpu":
        return torch.device("cpu")
    if dev.index is not None:
        return dev
    index = torch.cuda.current_device() if torch.cuda.is_available() else 0
    return torch.device("cuda", index)
