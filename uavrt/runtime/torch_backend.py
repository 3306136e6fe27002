"""The PyTorch backend: the reference every other backend is compared with."""

from __future__ import annotations

import torch

from ..errors import check_choice
from ..spec import NetworkSpec
from .backend import Backend, Runner, cast_inputs

PRECISIONS = ("fp32", "fp16")


class TorchRunner(Runner):
    def __init__(self, spec: NetworkSpec, module: torch.nn.Module, device, precision: str):
        super().__init__(spec, device, precision)
        dtype = torch.float16 if self.precision == "fp16" else torch.float32
        self.module = module.to(device=self.device, dtype=dtype).eval()

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
        self.device = torch.device(device)
        self.precision = check_choice("precision", precision, PRECISIONS)

    def from_module(self, spec: NetworkSpec, module: torch.nn.Module) -> Runner:
        return TorchRunner(spec, module, self.device, self.precision)
