"""The PyTorch backend: the reference every other backend is compared with."""

from __future__ import annotations

import torch

from ..errors import check_choice
from ..spec import NetworkSpec
from ..devices import resolve_device
from .backend import Backend, Runner, cast_inputs

PRECISIONS = ("fp32", "fp16")
DTYPES = {"fp32": torch.float32, "fp16": torch.float16}


def is_placed(module: torch.nn.Module, device: torch.device, dtype: torch.dtype) -> bool:
    """Every parameter and buffer already on `device`, every floating one already `dtype`.
    (Skipping `.to()` then is not only faster: under FakeTensorMode `.to()` cannot swap
    fake parameters, so the CPU dry run needs modules materialised in place.)"""
    tensors = list(module.parameters()) + list(module.buffers())
    return all(t.device == device and (t.dtype == dtype or not t.is_floating_point()) for t in tensors)


class TorchRunner(Runner):
    def __init__(self, spec: NetworkSpec, module: torch.nn.Module, device, precision: str):
        super().__init__(spec, device, precision)
        dtype = DTYPES[self.precision]
        if not is_placed(module, self.device, dtype):  # loaded in place: no second copy
            module = module.to(device=self.device, dtype=dtype)
        self.module = module.eval()

    def _run(self, inputs: dict) -> dict:
        x = cast_inputs(self.spec, inputs, self.precision, self.device)
        with torch.inference_mode():
            out = self.module(**x)
        if isinstance(out, torch.Tensor):
            out = (out,)
        return {t.name: o.float() for t, o in zip(self.spec.outputs, out)}


class TorchBackend(Backend):
    name = "torch"

    def __init__(self, device="cpu", precision: str = "fp32"):
        self.device = resolve_device(device)
        self.precision = check_choice("precision", precision, PRECISIONS)

    def from_module(self, spec: NetworkSpec, module: torch.nn.Module) -> Runner:
        return TorchRunner(spec, module, self.device, self.precision)
