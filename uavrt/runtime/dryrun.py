"""The GPU path on a CPU: one window of the real upscaler through fake CUDA, computing nothing.

    with fake_cuda():
        report = dry_run(RunConfig(...), BackendConfig(device="cuda", precision="fp16"), 854, 480, 8)

Builds the RELEASE networks from their packaged configs (uavrt/models/configs/*.json) on meta,
materialises them as fake tensors at their device and run precision (the U-Net fp16, VAE and RAFT
fp32, as the torch backend runs them), wraps them in the real torch backend's runners, and runs
one window through the real Upscaler: noise, RAFT flows, the DDIM loop with tiles, clips, guidance
and propagation, the tiled VAE decode, the colour fix, the uint8 conversion.

What it proves: no tensor meets one on another device or of a dtype an op refuses; no host read
of a device value and no host<->device copy inside the step loop (TransferMonitor); the shapes at
real sizes; and, from the same trace, live-memory peaks per stage and FLOPs per network.
What it does not: numerics (nothing is computed), kernel selection, speed, the text tower (its
embeddings are fake [1, 77, 1024] tensors on the device, what `TextEncoder.encode` returns there),
and what happens inside code that fake mode cannot enter (NVRTC launches, TensorRT, ONNX Runtime).
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass

import numpy as np
import torch

from ..config import BackendConfig, RunConfig
from ..devices import resolve_device
from ..errors import ConfigError
from .. import spec as specs
from .fake import ShapeMemo
from .plan import choose_tile
from .memory import StorageTracker, tensor_bytes
from .transfers import HostSync, TransferMonitor

TEXT_TOKENS = 77
# the release's packaged configs per network
CONFIGS = {"unet": "unet_video", "vae_3d": "vae_3d", "vae_video": "vae_video", "raft": "raft_things"}


class FakeText:
    """Stands in for the text tower: embeddings of the right shape on the device (not traced)."""

    def __init__(self, dim: int, device):
        self.dim, self.device = dim, device

    def encode(self, prompt: str) -> torch.Tensor:
        return torch.zeros((1, TEXT_TOKENS, self.dim), dtype=torch.float32, device=self.device)


@dataclass
class NetworkCost:
    weights_bytes: int = 0
    calls: int = 0
    traced: int = 0  # distinct input signatures (each traced in full once per process cache)
    flops: int = 0  # over all calls of this run
    own_bytes: int = 0  # largest transient of one call (live bytes above its inputs)


class _Observer:
    """Per-signature cost of each network call, recorded on its first trace: the live-memory
    transient (StorageTracker.watch) and FLOPs (torch's FlopCounterMode, which has formulas for
    the fake kernels); repeats replay them."""

    def __init__(self, tracker: StorageTracker | None, count_flops: bool):
        self.tracker, self.count_flops = tracker, count_flops

    @contextlib.contextmanager
    def first(self, name, cost: dict):
        with contextlib.ExitStack() as stack:
            w = stack.enter_context(self.tracker.watch()) if self.tracker else None
            counter = None
            if self.count_flops:
                from torch.utils.flop_counter import FlopCounterMode
                counter = stack.enter_context(FlopCounterMode(display=False))
            yield
        if w is not None:
            cost["own_bytes"] = w.own
        if counter is not None:
            cost["flops"] = int(counter.get_total_flops())

    def repeat(self, name, cost: dict):
        if self.tracker:
            self.tracker.spike(cost.get("own_bytes", 0))


class _Staged:
    """A runner seen through a named memory stage (everything the runner does is that stage)."""

    def __init__(self, runner, stage, tracker):
        self._runner, self._stage, self._tracker = runner, stage, tracker

    def __call__(self, **inputs):
        with self._tracker.stage(self._stage):
            return self._runner(**inputs)

    def __getattr__(self, item):
        return getattr(self._runner, item)


@dataclass
class DryRun:
    device: str
    precision: str
    size: tuple  # (width, height) low-res
    frames: int
    tile: int | None
    output: dict  # shape/dtype of the frames the window hands to the host
    transfers: list
    networks: dict  # name -> NetworkCost
    memory: object | None  # MemoryTrace
    seconds: float

    @property
    def loop_transfers(self) -> list:
        return [t for t in self.transfers if t.in_loop]


def fake_upscaler(cfg: RunConfig, backend: BackendConfig, vae: str = "3d", configs: dict | None = None,
                  tracker: StorageTracker | None = None, cache: dict | None = None):
    """The Upscaler with release-config networks as fake tensors (call inside `fake_cuda()`).
    configs: network -> config dict to use instead of the packaged release config (tests).
    cache: a dict kept by the caller for the life of ONE fake_cuda() context: built networks and
    their traces are reused by later runs (the same network traced at the same input metadata
    gives the same result)."""
    import json
    from ..models import schedulers as sch
    from ..models.release import build_network, packaged_config
    from .factory import make_backend
    from .model import Model
    from .upscaler import Upscaler

    if backend.backend != "torch":
        raise ConfigError("backend", backend.backend, "'torch' (the dry run traces PyTorch modules)")
    device = resolve_device(backend.device)
    be = make_backend(backend)
    names = ["unet", f"vae_{vae}"] + (["raft"] if cfg.sampler.propagation_steps else [])
    runners, costs, memos = {}, {}, {}
    for name in names:
        conf = (configs or {}).get(name) or packaged_config(CONFIGS[name])
        spec = specs.get_spec(name)
        dtype = {"fp16": torch.float16, "fp32": torch.float32}[spec.run_precision(backend.precision)]
        key = (name, json.dumps(conf, sort_keys=True), str(device), dtype)
        module = cache.get(key) if cache is not None else None
        if module is None:
            module = ShapeMemo(build_network(name, conf, device, dtype), name)
            if cache is not None:
                cache[key] = module
        module.memo["calls"] = {}
        if name == "raft":
            module.iters = cfg.propagation.raft_iters
        costs[name] = NetworkCost(weights_bytes=tensor_bytes(module.parameters(), device) +
                                  tensor_bytes(module.buffers(), device))
        runner = be.from_module(spec, module)
        runners[name] = _Staged(runner, name, tracker) if tracker else runner
        memos[name] = module
    unet_conf = (configs or {}).get("unet") or packaged_config("unet_video")
    vae_conf = (configs or {}).get(f"vae_{vae}") or packaged_config(CONFIGS[f"vae_{vae}"])
    ddim = sch.DDIMConfig()  # the release's scheduler (its defaults are the release values)
    model = Model(unet=runners["unet"], vae=runners[f"vae_{vae}"], raft=runners.get("raft"), ddim=ddim,
                  alphas_cumprod=sch.alphas_cumprod(ddim).to(device),
                  low_res_acp=sch.alphas_cumprod(sch.LowResNoiseConfig()).to(device), device=device,
                  scaling_factor=float(vae_conf.get("scaling_factor", 0.08333)),
                  text=FakeText(int(unet_conf["cross_attention_dim"]), device),
                  info={"weights": "release configs, fake tensors", "backend": be.name, "vae": f"vae_{vae}"})
    up = Upscaler(model, cfg)
    if tracker:
        base_propagate = up.propagate

        def propagate(*a, **k):
            with tracker.stage("propagation"):
                return base_propagate(*a, **k)
        up.propagate = propagate
    return up, memos, costs


def dry_run(cfg: RunConfig, backend: BackendConfig, width: int, height: int, frames: int, *, vae: str = "3d",
            track_memory: bool = True, count_flops: bool = True, configs: dict | None = None,
            inject=None, cache: dict | None = None) -> DryRun:
    """One window of `frames` low-res frames of width x height through the fake GPU path.
    Call inside `fake_cuda()`. `inject(upscaler)` may alter the upscaler first (tests).
    A cache reused with other `track_memory`/`count_flops` settings keeps the costs its traces
    recorded (a cost not recorded by the first trace stays unknown: 0)."""
    t0 = time.perf_counter()
    device = resolve_device(backend.device)
    tracker = StorageTracker(device) if track_memory else None
    up, memos, costs = fake_upscaler(cfg, backend, vae, configs, tracker, cache)
    obs = _Observer(tracker, count_flops)
    for m in memos.values():
        m.memo["observer"] = obs
    if inject is not None:
        inject(up)
    chunk = np.zeros((frames, height, width, 3), dtype=np.uint8)
    monitor = TransferMonitor(device)
    with contextlib.ExitStack() as stack:
        if tracker:
            stack.enter_context(tracker)
            stack.enter_context(tracker.stage("window"))
        stack.enter_context(monitor)
        try:
            out = _window(up, chunk)
        except RuntimeError as e:
            if isinstance(e, HostSync) or "device" not in str(e).lower():
                raise
            raise DeviceMismatch(f"{type(e).__name__}: {e}\n{misplaced_tensors(e.__traceback__, device)}") from e
    for name, m in memos.items():
        c = costs[name]
        c.calls = sum(m.memo["calls"].values())
        c.traced = len(m.memo["calls"])
        c.flops = sum(n * m.memo["costs"][sig].get("flops", 0) for sig, n in m.memo["calls"].items())
        c.own_bytes = max((m.memo["costs"][sig].get("own_bytes", 0) for sig in m.memo["calls"]), default=0)
        m.memo["observer"] = None
    h, w = chunk.shape[1:3]
    return DryRun(str(device), backend.precision, (width, height), frames, choose_tile(cfg.tiles, h, w),
                  {"shape": tuple(out.shape), "dtype": str(out.dtype), "device": str(out.device)},
                  monitor.transfers, costs, tracker.trace if tracker else None, time.perf_counter() - t0)


class DeviceMismatch(RuntimeError):
    """A tensor on another device than the run's met the run's tensors (named with its frame)."""


def misplaced_tensors(tb, device: torch.device) -> str:
    """The innermost uavrt frame of a traceback holding tensors that are not on `device` (0-d CPU
    scalars are allowed next to device tensors), with those tensors' names, shapes and devices."""
    import linecache
    import os
    from .transfers import _PKG, _SKIP
    frames = []
    while tb is not None:
        frames.append((tb.tb_frame, tb.tb_lineno))
        tb = tb.tb_next
    for frame, line in reversed(frames):
        fn = os.path.abspath(frame.f_code.co_filename)
        if not fn.startswith(_PKG) or fn in _SKIP:
            continue
        bad = {k: v for k, v in frame.f_locals.items() if isinstance(v, torch.Tensor) and v.device != device
               and not (v.dim() == 0 and v.device.type == "cpu")}
        if bad:
            names = ", ".join(f"{k} {tuple(v.shape)} {v.dtype} on {v.device}" for k, v in bad.items())
            src = linecache.getline(fn, line).strip()
            return (f"misplaced tensor(s) {names} (the run is on {device}) at uavrt/{os.path.relpath(fn, _PKG)}:"
                    f"{line} in {frame.f_code.co_name}: {src}")
    return f"no uavrt frame holds a tensor off {device}"


def _window(up, chunk: np.ndarray) -> torch.Tensor:
    """Upscaler.process_window up to the frames handed to the host (the float copies for a
    cross-fade are not taken: a single window has none)."""
    from .upscaler import to_uint8
    x = torch.from_numpy(chunk).to(up.model.device)  # [T, h, w, 3] uint8, as process_window does
    low_res = (x.permute(3, 0, 1, 2)[None].float() / 255.0 - 0.5) * 2.0
    video = up.upscale_tensor(low_res, 0)
    return to_uint8(video).cpu()  # process_window: then .numpy(), which fake tensors cannot do
