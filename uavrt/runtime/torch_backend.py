"""The PyTorch backend: the reference every other backend is compared with.

Two optional accelerations, both off by default (BackendConfig.torch: TorchOptions):
- compile: `torch.compile` (inductor) of the U-Net and the VAE; on a CPU inductor generates C++
  and builds it with the system compiler. The first call per input shape compiles (minutes for
  the release U-Net); later calls reuse it. Results differ from eager by float reassociation only
  (fused kernels), checked on the golden cases (tests/runtime/test_torch_accel.py).
- cuda_graphs: the U-Net call captured as a CUDA graph per input shape signature and replayed
  (the window plan's shapes are static, so a run sees a handful of signatures). Inputs are
  copied into the graph's static buffers; the outputs ARE the graph's buffers, valid until the
  next call of that shape (owns_outputs=True, as for TensorRT).
"""

from __future__ import annotations

import torch

from ..errors import ConfigError, check_choice
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


COMPILED_NETWORKS = ("unet", "vae_3d", "vae_video")  # RAFT's 20-step loop is left eager
GRAPHED_NETWORKS = ("unet",)
CUDA_GRAPH_WARMUP = 3  # side-stream iterations before capture (cuDNN/cuBLAS autotuning, allocator)


class TorchRunner(Runner):
    def __init__(self, spec: NetworkSpec, module: torch.nn.Module, device, precision: str, *,
                 compile: bool = False, cuda_graphs: bool = False):
        super().__init__(spec, device, precision)
        dtype = DTYPES[self.precision]
        if not is_placed(module, self.device, dtype):  # loaded in place: no second copy
            module = module.to(device=self.device, dtype=dtype)
        self.module = module.eval()
        # dynamic=False: one specialised graph per shape (the plan's shapes are few and fixed);
        # a new shape recompiles instead of falling back to slower symbolic-shape code.
        self._call = torch.compile(self.module, dynamic=False) if compile else self.module
        self.compiled = compile
        self.cuda_graphs = cuda_graphs
        if cuda_graphs:
            if self.device.type != "cuda":
                raise ConfigError("cuda_graphs", True, "a CUDA device (CUDA graphs capture GPU work)")
            self.owns_outputs = True
            self._graphs: dict = {}
            self._pool = None

    def _forward(self, x: dict) -> dict:
        with torch.inference_mode():
            out = self._call(**x)
        if isinstance(out, torch.Tensor):
            out = (out,)
        return {t.name: o.float() for t, o in zip(self.spec.outputs, out)}

    def _run(self, inputs: dict) -> dict:
        x = cast_inputs(self.spec, inputs, self.precision, self.device)
        if not self.cuda_graphs:
            return self._forward(x)
        return self._replay(x)

    # --- CUDA graphs ------------------------------------------------------------------------

    def _replay(self, x: dict) -> dict:
        key = tuple((n, tuple(t.shape), t.dtype) for n, t in x.items())
        g = self._graphs.get(key)
        if g is None:
            g = self._graphs[key] = self._capture(x)
        graph, static_in, static_out = g
        for name, t in x.items():
            static_in[name].copy_(t, non_blocking=True)
        graph.replay()
        return static_out

    def _capture(self, x: dict):
        # Static inputs are the graph's own buffers (values copied in at each call); 0-d CPU
        # scalars are not allowed inside a graph, so everything lives on the device.
        static_in = {n: t.to(self.device).clone() for n, t in x.items()}
        side = torch.cuda.Stream(self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side):
            for _ in range(CUDA_GRAPH_WARMUP):
                self._forward(static_in)
        torch.cuda.current_stream(self.device).wait_stream(side)
        if self._pool is None:  # one memory pool for all of this runner's graphs
            self._pool = torch.cuda.graph_pool_handle()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, pool=self._pool):
            static_out = self._forward(static_in)
        return graph, static_in, static_out


class TorchBackend(Backend):
    name = "torch"

    def __init__(self, device="cpu", precision: str = "fp32", *, compile: bool = False,
                 cuda_graphs: bool = False):
        self.device = resolve_device(device)
        self.precision = check_choice("precision", precision, PRECISIONS)
        if cuda_graphs and self.device.type != "cuda":
            raise ConfigError("cuda_graphs", True, f"a CUDA device (device is {device!r})")
        self.compile, self.cuda_graphs = compile, cuda_graphs

    def from_module(self, spec: NetworkSpec, module: torch.nn.Module) -> Runner:
        return TorchRunner(spec, module, self.device, self.precision,
                           compile=self.compile and spec.name in COMPILED_NETWORKS,
                           cuda_graphs=self.cuda_graphs and spec.name in GRAPHED_NETWORKS)
