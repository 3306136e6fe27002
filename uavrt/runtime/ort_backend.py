"""The ONNX Runtime backend: exported graphs (uavrt export) run through ONNX Runtime.

CPU provider here and in CI; CUDA provider with onnxruntime-gpu (pass providers explicitly to
use ORT's TensorRT provider). Inputs and outputs stay torch tensors: they are bound to the
session with I/O binding (their data pointers), so nothing is copied through numpy.
A graph is only used for what its metadata says it is (network, precision, weights, config):
anything else raises EngineMismatch naming the field.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch

from ..config import OrtOptions
from ..errors import BackendUnavailable, ConfigError, EngineMismatch, check_choice
from ..spec import NetworkSpec
from ..devices import resolve_device
from .backend import Backend, Runner

PRECISIONS = ("fp32", "fp16")
_DEVICE_PROVIDERS = {"cpu": ("CPUExecutionProvider",),
                     "cuda": ("CUDAExecutionProvider", "CPUExecutionProvider")}
# ONNX Runtime type strings -> torch dtypes (the graph's I/O types)
_TORCH_DTYPES = {"tensor(float)": torch.float32, "tensor(float16)": torch.float16,
                 "tensor(int64)": torch.int64, "tensor(int32)": torch.int32}


_GRAPH_OPT = {"basic": "ORT_ENABLE_BASIC", "extended": "ORT_ENABLE_EXTENDED", "all": "ORT_ENABLE_ALL"}


def session_options(ort, options: OrtOptions):
    """ORT SessionOptions from the typed options (sequential execution: the graphs are one chain)."""
    opts = ort.SessionOptions()
    opts.graph_optimization_level = getattr(ort.GraphOptimizationLevel, _GRAPH_OPT[options.graph_optimization])
    opts.enable_cpu_mem_arena = options.memory_arena
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.log_severity_level = 3  # errors only: optimiser notes would drown the progress output
    if options.threads:
        opts.intra_op_num_threads = options.threads
    return opts


def require_onnxruntime():
    try:
        import onnxruntime
    except ImportError as e:
        raise BackendUnavailable("ONNX Runtime is not installed: pip install onnxruntime "
                                 "(CPU) or onnxruntime-gpu (CUDA)") from e
    return onnxruntime


class OrtRunner(Runner):
    def __init__(self, spec: NetworkSpec, session, device, precision: str, source: str, keep_alive=None):
        super().__init__(spec, device, precision)
        self.session, self.source, self._keep_alive = session, source, keep_alive
        ins = {i.name: i.type for i in session.get_inputs()}
        outs = {o.name: o.type for o in session.get_outputs()}
        if list(ins) != list(spec.input_names) or list(outs) != list(spec.output_names):
            raise EngineMismatch(f"{source}: graph I/O {list(ins)} -> {list(outs)} does not match the "
                                 f"{spec.name} spec {list(spec.input_names)} -> {list(spec.output_names)}")
        unknown = {n: t for n, t in {**ins, **outs}.items() if t not in _TORCH_DTYPES}
        if unknown:
            raise EngineMismatch(f"{source}: I/O types {unknown} are not supported")
        self.in_dtypes = {n: _TORCH_DTYPES[t] for n, t in ins.items()}
        self.out_dtypes = {n: _TORCH_DTYPES[t] for n, t in outs.items()}
        self._ort_device = ("cuda", self.device.index or 0) if self.device.type == "cuda" else ("cpu", 0)

    def _run(self, inputs: dict) -> dict:
        dims = self.spec.bind_dims(inputs)
        binding = self.session.io_binding()
        dev_type, dev_id = self._ort_device
        # feeds must outlive the run: ORT reads them through their pointers
        feeds = {n: inputs[n].to(device=self.device, dtype=d).contiguous() for n, d in self.in_dtypes.items()}
        for name, x in feeds.items():
            binding.bind_input(name, dev_type, dev_id, _np_dtype(x.dtype), tuple(x.shape), x.data_ptr())
        outs = {}
        for name, shape in self.spec.output_shapes(dims).items():
            y = torch.empty(shape, dtype=self.out_dtypes[name], device=self.device)
            binding.bind_output(name, dev_type, dev_id, _np_dtype(y.dtype), tuple(y.shape), y.data_ptr())
            outs[name] = y
        if self.device.type == "cuda":  # ORT runs on its own stream: let torch's work finish first
            torch.cuda.current_stream(self.device).synchronize()
        self.session.run_with_iobinding(binding)
        return {name: y.float() for name, y in outs.items()}


# providers that run on one GPU and take its ordinal as the provider option `device_id`
_GPU_PROVIDERS = ("CUDAExecutionProvider", "TensorrtExecutionProvider")


def with_device_id(providers, device: torch.device) -> list:
    """Providers with `device_id` set to the runner's GPU: without it ORT runs the session on
    GPU 0 while the I/O is bound on `device` (cuda:1 -> device_id '1'). An explicit different
    device_id is refused (one runner, one device)."""
    out = []
    for p in providers:
        name, opts = (p[0], dict(p[1])) if isinstance(p, tuple) else (p, {})
        if name in _GPU_PROVIDERS and device.type == "cuda":
            given = opts.setdefault("device_id", str(device.index))
            if str(given) != str(device.index):
                raise ConfigError("providers", p, f"device_id {device.index} (the backend's device {device})")
            opts["device_id"] = str(device.index)  # ORT takes provider option values as strings
        out.append((name, opts) if opts else name)
    return out


def _np_dtype(dtype: torch.dtype):
    import numpy as np
    return {torch.float32: np.float32, torch.float16: np.float16, torch.int64: np.int64,
            torch.int32: np.int32}[dtype]


class OrtBackend(Backend):
    """Runners on ONNX Runtime.

    providers: ORT execution providers in priority order (default by device: CPU; CUDA + CPU).
    precision: "fp16" runs the U-Net's fp16 graph (VAE/RAFT stay fp32, like the torch backend).
    engines: folder of graphs exported by `uavrt export` (`<network>.<precision>.onnx`), used by
    `load_network`; without it networks are exported on the fly into a temporary folder.
    """

    name = "onnxruntime"

    def __init__(self, providers=None, device="cpu", *, precision: str = "fp32", engines=None,
                 threads: int | None = None, options: OrtOptions | None = None):
        ort = require_onnxruntime()
        self.device = resolve_device(device)
        check_choice("device", self.device.type, tuple(_DEVICE_PROVIDERS))
        self.precision = check_choice("precision", precision, PRECISIONS)
        available = ort.get_available_providers()
        if providers is None:
            providers = _DEVICE_PROVIDERS[self.device.type]
            if providers[0] not in available:
                raise BackendUnavailable(f"ONNX Runtime has no {providers[0]} for device {device!r} (available: "
                                         f"{', '.join(available)}): pip install onnxruntime-gpu")
        for p in providers:
            name = p[0] if isinstance(p, tuple) else p
            if name not in available:
                raise ConfigError("providers", name, "one of the installed ONNX Runtime providers: "
                                  + ", ".join(available))
        self.providers = with_device_id(providers, self.device)
        self.engines = Path(engines) if engines is not None else None
        self.options = options if options is not None else OrtOptions(threads=threads)

    @property
    def threads(self) -> int | None:
        return self.options.threads

    def _session(self, path: Path):
        ort = require_onnxruntime()
        return ort.InferenceSession(str(path), sess_options=session_options(ort, self.options),
                                    providers=self.providers)

    def load(self, spec: NetworkSpec, onnx_path, *, expect: dict | None = None, keep_alive=None) -> OrtRunner:
        """A runner for an exported graph; its metadata must match `expect` (network and
        precision always; weights_sha256/weights_hash, config when given)."""
        from ..export.metadata import check_metadata, read_metadata

        path = Path(onnx_path)
        if not path.is_file():
            raise EngineMismatch(f"no ONNX graph {str(path)!r}: export it with `uavrt export`")
        meta = read_metadata(path)
        want = {"network": spec.name, **(expect or {})}
        check_metadata(meta, want, str(path))
        precision = meta.get("precision", "fp32")
        return OrtRunner(spec, self._session(path), self.device, precision, str(path), keep_alive)

    def from_module(self, spec: NetworkSpec, module: torch.nn.Module, *, weights_hash: str | None = None,
                    config: dict | None = None) -> OrtRunner:
        """Export `module` (at this backend's precision for the network) to a temporary folder
        and load it; the folder lives as long as the runner."""
        from ..export.onnx_export import export_onnx

        precision = spec.run_precision(self.precision)
        tmp = tempfile.TemporaryDirectory(prefix=f"uavrt-ort-{spec.name}-")
        path = export_onnx(module, spec, Path(tmp.name) / f"{spec.name}.{precision}.onnx", precision=precision,
                           weights_hash=weights_hash, config=config)
        return self.load(spec, path, expect={"precision": precision}, keep_alive=tmp)

    def load_network(self, spec: NetworkSpec, loaded) -> OrtRunner:
        """A runner for a loaded release network (`uavrt.models.release.Checkpoint`): its graph
        from `engines` (checked against the weights hash and config), else exported now."""
        precision = spec.run_precision(self.precision)
        if self.engines is None:
            return self.from_module(spec, loaded.module, weights_hash=loaded.weights_hash, config=loaded.config)
        expect = {"precision": precision, "weights_sha256": loaded.weights_hash, "config": loaded.config}
        return self.load(spec, self.engines / f"{spec.name}.{precision}.onnx", expect=expect)
