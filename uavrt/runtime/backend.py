"""The backend interface: named tensors in, named tensors out.

The denoising loop only sees `Runner`s; it never imports or names a backend. A backend turns a
network (a PyTorch module, an ONNX file, a TensorRT plan) into a Runner. As in Polygraphy's
runners, `__call__` validates once at the boundary and then calls the backend's `_run`.

Contract of every Runner:
- inputs: torch tensors on `runner.device`, exactly the spec's input names; floating inputs may
  be any float dtype (the runner casts to its precision), integer inputs are int64;
- outputs: a dict of float32 tensors on `runner.device`, keyed by the spec's output names.
  `owns_outputs=True` means the tensors are the runner's own buffers, valid only until the next
  call (TensorRT, CUDA graphs): copy them to keep them.
A Runner holds resources (sessions, engines, buffers): `close()` or a `with` block frees them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch

from ..devices import resolve_device
from ..errors import InputError
from ..spec import NetworkSpec


class Runner(ABC):
    owns_outputs: bool = False

    def __init__(self, spec: NetworkSpec, device: torch.device, precision: str):
        self.spec, self.device = spec, resolve_device(device)
        self.precision = spec.run_precision(precision)

    def __call__(self, **inputs: torch.Tensor) -> dict:
        self.spec.bind_dims(inputs)
        for name, x in inputs.items():
            if x.device != self.device and not (x.dim() == 0 and x.device.type == "cpu"):
                raise InputError(f"{self.spec.name}.{name} is on {x.device}, the runner on {self.device}: "
                                 f"put the input on {self.device}")
        return self._run(inputs)

    @abstractmethod
    def _run(self, inputs: dict) -> dict:
        ...

    def close(self) -> None:
        """Free what the runner holds (sessions, engines, buffers); a no-op by default."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return f"{type(self).__name__}({self.spec.name}, {self.device}, {self.precision})"


class Backend(ABC):
    """Makes Runners. `name` is for reports and caches only, never for branching in the loop."""

    name: str = "?"

    @abstractmethod
    def from_module(self, spec: NetworkSpec, module: torch.nn.Module) -> Runner:
        """A runner for a PyTorch module (export/convert it as the backend needs)."""

    def load_network(self, spec: NetworkSpec, checkpoint) -> Runner:
        """A runner for a release network (`uavrt.models.release.Checkpoint`). Backends that run
        prebuilt artifacts (ONNX graphs, engines) override this to check them against the
        checkpoint's weights hash and config; the default wraps the module."""
        return self.from_module(spec, checkpoint.module)


def cast_inputs(spec: NetworkSpec, inputs: dict, precision: str, device) -> dict:
    """Cast floating inputs to the network's precision (int64 inputs untouched)."""
    out = {}
    for t in spec.inputs:
        x = inputs[t.name]
        out[t.name] = x.to(device=device, dtype=t.torch_dtype(precision))
    return out
