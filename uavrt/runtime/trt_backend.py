"""The TensorRT backend: runs the engines `build_engines` wrote, with torch owning all memory.

Design (TensorRT 10/11 name-based API, `execute_async_v3`):
- one execution context per engine, created with USER_MANAGED device memory: the activation
  memory of all engines is ONE torch buffer sized for the largest `device_memory_size_v2`
  (the engines run one after another on one stream, so they can share it; three private
  buffers would not fit the U-Net + VAE + RAFT on a 24 GB card);
- per call: input shapes set with `set_input_shape`, torch tensors' addresses bound with
  `set_tensor_address`, `execute_async_v3` on torch's current stream (no host sync). When that
  stream is CUDA's default stream (torch's default), the engines run on one non-default stream
  of the backend instead, ordered after the caller's stream and before its next work by
  `wait_stream` (events, no host sync): TensorRT 11.4's own docstring warns that the default
  stream costs extra cudaDeviceSynchronize() calls;
- outputs are this runner's own buffers (`owns_outputs=True`): valid until the next call of the
  same runner unless `copy_outputs=True`; FP16 outputs are returned as new float32 tensors;
- optional CUDA graphs (`cuda_graphs=True`) for a fixed shape: the graph is captured on the
  first call, replayed (inputs copied into its static buffers) while the shapes stay the same,
  recaptured when they change.

Before anything is deserialised the manifest entry is checked against this TensorRT and GPU,
the plan file against its sha256, and each call's shapes against the engine's profile: these
refusals are pure functions, tested on CPU.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from ..devices import resolve_device
from ..errors import EngineMismatch, InputError, check_choice
from ..export import cache
from ..spec import NetworkSpec, get_spec
from ..trt_env import gpu_identity, require_tensorrt, version_tuple
from .backend import Backend, Runner


# --- checks on manifest data (no TensorRT needed) ---------------------------------------------
@dataclass(frozen=True)
class EngineEnv:
    """What an engine must have been built for: this TensorRT and this GPU."""

    tensorrt_version: str
    gpu_name: str
    compute_capability: str  # "major.minor"


def check_engine_compatible(name: str, entry: dict, env: EngineEnv) -> None:
    """Refuse an engine built for another TensorRT version or GPU (EngineMismatch says which)."""
    f = entry["fields"]
    built, here = f["tensorrt_version"], env.tensorrt_version
    if f.get("version_compatible"):
        # version-compatible plans run on later TensorRT releases of the same major version
        ok = version_tuple(here)[:1] == version_tuple(built)[:1] and version_tuple(here) >= version_tuple(built)
        need = f"TensorRT {version_tuple(built)[0]}.x >= {built} (version-compatible engine)"
    else:
        ok, need = here == built, f"TensorRT {built} exactly"
    if not ok:
        raise EngineMismatch(f"engine {name} was built with TensorRT {built} and needs {need}; this is "
                             f"TensorRT {here}: rebuild it (uavrt export --trt --overwrite)"
                             + ("" if f.get("version_compatible") else ", or build it version-compatible"))
    level = f.get("hardware_compatibility", "none")
    built_gpu = f"{f['gpu_name']} (compute capability {f['compute_capability']})"
    here_gpu = f"{env.gpu_name} (compute capability {env.compute_capability})"
    if level == "ampere_plus":
        ok, need = version_tuple(env.compute_capability) >= (8, 0), "an Ampere or newer GPU (compute capability >= 8.0)"
    elif level == "same_compute_capability":
        ok, need = env.compute_capability == f["compute_capability"], f"compute capability {f['compute_capability']}"
    else:
        ok = env.gpu_name == f["gpu_name"] and env.compute_capability == f["compute_capability"]
        need = f"the same GPU model, {built_gpu}"
    if not ok:
        raise EngineMismatch(f"engine {name} was built on {built_gpu} and needs {need}; this GPU is "
                             f"{here_gpu}: rebuild it on this GPU (uavrt export --trt --overwrite)"
                             + ("" if level != "none" else ", or build it hardware-compatible"))


def check_expected(name: str, entry: dict, expect: dict | None) -> None:
    """The engine's source graph metadata must match what the caller expects (EngineMismatch).

    `expect` as for ONNX graphs (`uavrt.export.metadata.check_metadata`): network, precision,
    weights_sha256 (alias weights_hash), config (a dict), or any other uavrt metadata field.
    """
    from ..export.metadata import PREFIX, check_metadata

    found = {k[len(PREFIX):]: v for k, v in entry.get("onnx_metadata", {}).items() if k.startswith(PREFIX)}
    check_metadata(found, expect, f"engine {name} (from {entry.get('onnx_file', 'its ONNX graph')})")


def check_input_shapes(network: str, profiles: dict, shapes: dict) -> None:
    """Refuse shapes outside the engine's optimisation profile (InputError names input and range)."""
    for name, shape in shapes.items():
        lo, opt, hi = (tuple(s) for s in profiles[name])
        shape = tuple(shape)
        if len(shape) != len(lo) or any(not a <= s <= b for s, a, b in zip(shape, lo, hi)):
            raise InputError(f"{network}.{name}: shape {shape} is outside the engine's profile "
                             f"(min {lo}, max {hi}, opt {opt}); tile/chunk the input to fit or rebuild "
                             "the engine with a ProfilePlan that covers it")


def resolve_engine(engines_dir, network: str, precision: str, env: EngineEnv, expect=None) -> tuple:
    """(manifest entry, plan path) of a usable engine, or the reason it cannot be used."""
    name = cache.engine_name(network, precision)
    entry = cache.load_manifest(engines_dir)["engines"].get(name)
    if entry is None:
        raise EngineMismatch(f"no engine {name} in {str(engines_dir)!r} ({cache.MANIFEST} has no entry): "
                             "build it with `uavrt export --trt`")
    check_engine_compatible(name, entry, env)
    check_expected(name, entry, expect)
    return entry, cache.check_plan_file(engines_dir, name, entry)


# --- device memory shared by the contexts -----------------------------------------------------
# handles torch reports for CUDA's default streams: null (legacy), cudaStreamLegacy, cudaStreamPerThread
DEFAULT_STREAM_HANDLES = (0, 1, 2)


class SharedActivationMemory:
    """One torch-owned device buffer that every context uses for its activations.

    Safe because the contexts of one backend run one at a time in stream order. Growing it
    re-points every context and bumps `generation` (captured CUDA graphs hold the old address).
    For the same reason the engines share one stream when the caller's is the default stream
    (`stream_for`).
    """

    def __init__(self, device: torch.device):
        self.device, self.buffer, self.contexts, self.generation = device, None, [], 0
        self._stream = None

    def stream_for(self, caller):
        """The stream to enqueue on: the caller's, unless it is a default stream (then ours)."""
        if int(caller.cuda_stream) not in DEFAULT_STREAM_HANDLES:
            return caller
        if self._stream is None:
            self._stream = torch.cuda.Stream(device=self.device)
        return self._stream

    @property
    def nbytes(self) -> int:
        return 0 if self.buffer is None else self.buffer.numel()

    def attach(self, context, size: int) -> None:
        self.contexts.append(context)
        if self.buffer is None or size > self.nbytes:
            # torch's caching allocator returns 512-byte aligned blocks (TensorRT needs 256)
            self.buffer = torch.empty(max(int(size), 1), dtype=torch.uint8, device=self.device)
            self.generation += 1
            for ctx in self.contexts:
                ctx.set_device_memory(self.buffer.data_ptr(), self.nbytes)
        else:
            context.set_device_memory(self.buffer.data_ptr(), self.nbytes)


# --- runner -----------------------------------------------------------------------------------
@dataclass
class _Graph:
    key: tuple  # the input-shape signature it was captured for
    graph: object  # torch.cuda.CUDAGraph
    inputs: dict
    outputs: dict
    generation: int


class TrtRunner(Runner):
    owns_outputs = True

    def __init__(self, spec: NetworkSpec, trt, engine, entry: dict, memory: SharedActivationMemory,
                 device: torch.device, *, copy_outputs: bool, cuda_graphs: bool):
        super().__init__(spec, device, entry["fields"]["precision"])
        self.engine, self.entry, self.memory = engine, entry, memory
        self.profiles = entry["fields"]["profiles"]
        self.copy_outputs, self.cuda_graphs = copy_outputs, cuda_graphs
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        is_input = {n: engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT for n in names}
        self.input_names = [n for n in names if is_input[n]]
        self.output_names = [n for n in names if not is_input[n]]
        if set(self.input_names) != set(spec.input_names) or not set(spec.output_names) <= set(self.output_names):
            raise EngineMismatch(f"engine {spec.name}: I/O {self.input_names} -> {self.output_names} does not "
                                 f"match the spec {list(spec.input_names)} -> {list(spec.output_names)}")
        self.dtypes = {n: _torch_dtype(trt, engine.get_tensor_dtype(n)) for n in names}
        self.dynamic_inputs = {n for n in self.input_names if any(d < 0 for d in engine.get_tensor_shape(n))}
        self.context = engine.create_execution_context(trt.ExecutionContextAllocationStrategy.USER_MANAGED)
        if self.context is None:
            raise EngineMismatch(f"engine {spec.name}: TensorRT could not create an execution context")
        memory.attach(self.context, engine.device_memory_size_v2)
        self._outputs, self._keep, self._graph = {}, {}, None

    def _run(self, inputs: dict) -> dict:
        shapes = {n: tuple(x.shape) for n, x in inputs.items()}
        check_input_shapes(self.spec.name, self.profiles, shapes)
        with torch.cuda.device(self.device):
            caller = torch.cuda.current_stream(self.device)
            stream = self.memory.stream_for(caller)
            if stream is not caller:
                stream.wait_stream(caller)  # after the work that produced the inputs
            with torch.cuda.stream(stream):
                feeds = {n: inputs[n].to(device=self.device, dtype=self.dtypes[n]).contiguous()
                         for n in self.input_names}
                if self.cuda_graphs:
                    outs = self._replay(feeds, shapes, stream)
                else:
                    self._keep = feeds  # alive until the next call, whatever the caller drops
                    outs = self._bind(feeds, self._outputs)
                    self._execute(stream)
            if stream is not caller:
                caller.wait_stream(stream)  # the caller's next work sees the outputs (no host sync)
        # conversions run on the caller's stream, so the tensors handed out are allocated there
        result = {}
        for t in self.spec.outputs:
            y = outs[t.name]
            result[t.name] = y.float() if y.dtype != torch.float32 else (y.clone() if self.copy_outputs else y)
        return result

    def _bind(self, feeds: dict, out_buffers: dict) -> dict:
        """Set input shapes and addresses; (re)allocate outputs in `out_buffers` to TensorRT's shapes."""
        ctx = self.context
        for name in self.input_names:
            x = feeds[name]
            if name in self.dynamic_inputs and not ctx.set_input_shape(name, tuple(x.shape)):
                raise InputError(f"{self.spec.name}.{name}: TensorRT refused shape {tuple(x.shape)}")
            ctx.set_tensor_address(name, x.data_ptr())
        for name in self.output_names:
            shape = tuple(ctx.get_tensor_shape(name))
            if any(d < 0 for d in shape):
                raise EngineMismatch(f"{self.spec.name}.{name}: TensorRT could not infer the output shape {shape}")
            buf = out_buffers.get(name)
            if buf is None or tuple(buf.shape) != shape:
                buf = out_buffers[name] = torch.empty(shape, dtype=self.dtypes[name], device=self.device)
            ctx.set_tensor_address(name, buf.data_ptr())
        return out_buffers

    def _execute(self, stream) -> None:
        if not self.context.execute_async_v3(stream.cuda_stream):
            raise RuntimeError(f"TensorRT execute_async_v3 failed for {self.spec.name} (see the TensorRT log)")

    def _replay(self, feeds: dict, shapes: dict, stream) -> dict:
        # ONE graph per runner: a captured graph bakes in the context's shapes and addresses, so a
        # new shape signature (or a grown activation buffer) recaptures rather than keeping several
        # graphs that would share one context's shape-dependent state.
        key = tuple(sorted(shapes.items()))
        g = self._graph
        if g is None or g.key != key or g.generation != self.memory.generation:
            self._graph = None
            g = self._graph = self._capture(key, feeds, stream)
        for name, x in feeds.items():
            g.inputs[name].copy_(x)
        g.graph.replay()
        return g.outputs

    def _capture(self, key: tuple, feeds: dict, stream) -> _Graph:
        static = {n: x.clone() for n, x in feeds.items()}
        outs = self._bind(static, {})
        self._execute(stream)  # TensorRT finishes shape-dependent setup on the first enqueue
        graph = torch.cuda.CUDAGraph()
        try:
            with torch.cuda.graph(graph):
                self._execute(torch.cuda.current_stream(self.device))
        except RuntimeError as e:
            raise RuntimeError(f"{self.spec.name}: CUDA graph capture of the TensorRT engine failed ({e}); "
                               "run with cuda_graphs=False") from e
        return _Graph(key, graph, static, outs, self.memory.generation)


def _torch_dtype(trt, dtype):
    table = {}
    for trt_name, t in (("FLOAT", torch.float32), ("HALF", torch.float16), ("BF16", torch.bfloat16),
                        ("INT64", torch.int64), ("INT32", torch.int32), ("INT8", torch.int8),
                        ("UINT8", torch.uint8), ("BOOL", torch.bool)):
        member = getattr(trt.DataType, trt_name, None)
        if member is not None:
            table[member] = t
    if dtype not in table:
        raise EngineMismatch(f"TensorRT I/O dtype {dtype} has no torch equivalent")
    return table[dtype]


# --- backend ----------------------------------------------------------------------------------
class TrtBackend(Backend):
    """Runners for the engines in `engines_dir` (see `uavrt.export.trt.build_engines`).

    precision: which engines to use ("fp16": `<network>.fp16.plan`).
    module_expect: optional `(spec, module) -> dict` of ONNX metadata the engine must carry for
    `from_module` (e.g. {"weights_sha256": ...}), so a runner never pairs an engine with other
    weights silently. Without it `from_module` uses the engine and ignores the module;
    `load_network` (the pipeline's path) always checks weights hash and config.
    """

    name = "tensorrt"

    def __init__(self, engines_dir, device="cuda", *, precision: str = "fp16", copy_outputs: bool = False,
                 cuda_graphs: bool = False, module_expect=None):
        self.trt = require_tensorrt()  # no TensorRT -> BackendUnavailable at once
        gpu_name, capability = gpu_identity(device)  # no GPU -> BackendUnavailable
        self.device = resolve_device(device)  # Runner compares devices exactly: "cuda" != "cuda:0"
        self.engines_dir = Path(engines_dir)
        self.precision = check_choice("precision", precision, ("fp16", "fp32"))
        self.copy_outputs, self.cuda_graphs, self.module_expect = copy_outputs, cuda_graphs, module_expect
        self.env = EngineEnv(self.trt.__version__, gpu_name, capability)
        self.memory = SharedActivationMemory(self.device)
        self.logger = self.trt.Logger(self.trt.Logger.WARNING)
        self.runtime = self.trt.Runtime(self.logger)
        self._runners: dict = {}

    @property
    def activation_bytes(self) -> int:
        """Size of the activation buffer the engines share (the largest engine's need)."""
        return self.memory.nbytes

    def load(self, spec, *, expect: dict | None = None) -> TrtRunner:
        """The runner of `spec`'s engine (one per engine: loading twice returns the same runner)."""
        spec = get_spec(spec) if isinstance(spec, str) else spec
        runner = self._runners.get(spec.name)
        if runner is not None:
            check_expected(cache.engine_name(spec.name, self.precision), runner.entry, expect)
            return runner
        entry, plan_path = resolve_engine(self.engines_dir, spec.name, self.precision, self.env, expect)
        with torch.cuda.device(self.device):
            if entry["fields"].get("version_compatible"):
                # version-compatible plans embed the lean runtime, which is host code
                self.runtime.engine_host_code_allowed = True
            engine = self.runtime.deserialize_cuda_engine(plan_path.read_bytes())
            if engine is None:
                raise EngineMismatch(f"TensorRT could not deserialise {plan_path} (see the TensorRT log)")
            runner = TrtRunner(spec, self.trt, engine, entry, self.memory, self.device,
                               copy_outputs=self.copy_outputs, cuda_graphs=self.cuda_graphs)
        self._runners[spec.name] = runner
        return runner

    def from_module(self, spec: NetworkSpec, module: torch.nn.Module) -> Runner:
        expect = self.module_expect(spec, module) if self.module_expect is not None else None
        return self.load(spec, expect=expect)

    def load_network(self, spec: NetworkSpec, loaded) -> Runner:
        """The engine for a loaded release network (`uavrt.models.release.Checkpoint`): its
        source graph must have been exported from exactly these weights and this config."""
        return self.load(spec, expect={"weights_sha256": loaded.weights_hash, "config": loaded.config})
