"""Backend selection by name: the only place in the runtime that names backends."""

from __future__ import annotations

from ..config import BackendConfig


def make_backend(cfg: BackendConfig):
    if cfg.backend == "torch":
        from .torch_backend import TorchBackend
        return TorchBackend(cfg.device, cfg.precision, compile=cfg.compile, cuda_graphs=cfg.cuda_graphs)
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
