"""Backend selection by name: the only place in the runtime that names backends."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ConfigError, check_choice

BACKENDS = ("torch", "onnxruntime", "tensorrt")


@dataclass(frozen=True)
class BackendConfig:
    backend: str = "torch"
    device: str = "cpu"
    precision: str = "fp32"  # fp16: U-Net (and text encoder) in fp16 as the release; VAE/RAFT stay fp32
    engines: str | None = None  # folder of exported ONNX graphs / TensorRT plans

    def __post_init__(self):
        check_choice("backend", self.backend, BACKENDS)
        check_choice("precision", self.precision, ("fp32", "fp16"))
        if self.backend == "tensorrt" and not self.engines:
            raise ConfigError("engines", self.engines, "a folder of TensorRT engines (uavrt export --trt)")


def make_backend(cfg: BackendConfig):
    if cfg.backend == "torch":
        from .torch_backend import TorchBackend
        return TorchBackend(cfg.device, cfg.precision)
    if cfg.backend == "onnxruntime":
        from .ort_backend import OrtBackend
        return OrtBackend(device=cfg.device, precision=cfg.precision, engines=cfg.engines)
    from .trt_backend import TrtBackend
    return TrtBackend(cfg.engines, device=cfg.device)


def make_runner(backend, spec, loaded):
    """A runner for a loaded network: backends that load prebuilt artifacts (ONNX graphs, engines)
    say so with `load_network`; others wrap the PyTorch module."""
    if hasattr(backend, "load_network"):
        return backend.load_network(spec, loaded)
    return backend.from_module(spec, loaded.module)
