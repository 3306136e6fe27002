"""Backend selection by name: the only place in the runtime that names backends."""

from __future__ import annotations

from ..config import BackendConfig


def make_backend(cfg: BackendConfig):
    if cfg.backend == "torch":
        from .torch_backend import TorchBackend
        return TorchBackend(cfg.device, cfg.precision, compile=cfg.torch.compile, cuda_graphs=cfg.torch.cuda_graphs)
    if cfg.backend == "onnxruntime":
        from .ort_backend import OrtBackend
        return OrtBackend(cfg.ort.providers, device=cfg.device, precision=cfg.precision, engines=cfg.engines,
                          options=cfg.ort)
    from .trt_backend import TrtBackend
    return TrtBackend(cfg.engines, device=cfg.device, precision=cfg.precision, copy_outputs=cfg.trt.copy_outputs,
                      cuda_graphs=cfg.trt.cuda_graphs)

