"""Cross-backend verification: the same inputs through several backends, compared with a reference.

`verify` builds one runner per (backend, network) through the backend's own `from_module`, so
what is checked is exactly what the pipeline would run (an exported ONNX graph on ONNX Runtime,
an engine on TensorRT, a cast module on PyTorch). Outputs are compared with Polygraphy's simple
comparator (element-wise: an element fails when it is outside BOTH atol and rtol; NaN fails),
the reference as the denominator of the relative error. Each row also reports max|diff| relative
to the reference's peak magnitude, the readable number for FP16 engines whose element-wise
relative error explodes wherever the reference is near zero.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .errors import ConfigError, check_choice
from .models.release import Checkpoint
from .spec import SPECS, NetworkSpec, get_spec


@dataclass(frozen=True)
class Tolerance:
    atol: float
    rtol: float


# Bars for an FP16 engine/graph against the fp32 PyTorch reference on the release networks.
# Starting points, NOT measured here (no GPU/TensorRT in this project yet): the golden README
# says fp16 engines cannot meet the fp32 golden atol and should be judged by relative error;
# RAFT's 20 refinement iterations amplify fp16 rounding in the flow (pixels).
DEFAULT_TOLERANCES = {
    "unet": Tolerance(atol=5e-2, rtol=5e-2),
    "vae_3d": Tolerance(atol=1e-2, rtol=1e-2),
    "vae_video": Tolerance(atol=1e-2, rtol=1e-2),
    "raft": Tolerance(atol=1e-1, rtol=5e-2),
}


@dataclass
class OutputComparison:
    network: str
    backend: str
    output: str
    shape: tuple
    max_abs: float
    mean_abs: float
    max_rel: float
    mean_rel: float
    ref_peak: float  # max |reference|
    atol: float
    rtol: float
    passed: bool
    note: str = ""

    @property
    def max_abs_over_peak(self) -> float:
        return self.max_abs / self.ref_peak if self.ref_peak > 0 else float("inf") if self.max_abs else 0.0


@dataclass
class VerifyReport:
    reference: str
    rows: list

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.rows)

    def to_dict(self) -> dict:
        return {"reference": self.reference, "passed": self.passed,
                "rows": [{**asdict(r), "max_abs_over_peak": r.max_abs_over_peak} for r in self.rows]}

    def format(self) -> str:
        lines = [f"reference: {self.reference}",
                 "| network | backend | output | max abs | mean abs | max rel | mean rel | max abs / peak "
                 "| atol | rtol | result |",
                 "|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in self.rows:
            lines.append(f"| {r.network} | {r.backend} | {r.output} | {r.max_abs:.3g} | {r.mean_abs:.3g} | "
                         f"{r.max_rel:.3g} | {r.mean_rel:.3g} | {r.max_abs_over_peak:.3g} | {r.atol:.3g} | "
                         f"{r.rtol:.3g} | {'ok' if r.passed else 'FAIL'}{' ' + r.note if r.note else ''} |")
        lines.append("PASSED" if self.passed else "FAILED")
        return "\n".join(lines)


def verify(backends: dict, networks: dict, inputs: dict, *, reference: str | None = None,
           tolerances: dict | None = None, progress=None) -> VerifyReport:
    """Run every network on every backend with the same inputs; compare each with the reference.

    backends: {name: Backend}; the reference is `reference` or the first one.
    networks: {network name: module, a `Checkpoint` (release weights: backends with prebuilt
    graphs/engines use `load_network`, which checks weights hash and config) or
    (NetworkSpec, module)}; specs from uavrt.spec unless given.
    inputs: {network name: {input name: tensor}} (moved to each runner's device).
    tolerances: {network name: Tolerance}; defaults to DEFAULT_TOLERANCES for the release networks.
    Each backend gets its own deep copy of a module (backends cast/move modules in place).
    progress: called with one line of text per network and backend (start, seconds taken).
    """
    if len(backends) < 2:
        raise ConfigError("backends", list(backends), "at least two backends to compare, "
                          "e.g. {'torch': TorchBackend(), 'tensorrt': TrtBackend(...)}")
    reference = reference if reference is not None else next(iter(backends))
    if reference not in backends:
        raise ConfigError("reference", reference, "one of " + ", ".join(repr(b) for b in backends))
    tolerances = {**DEFAULT_TOLERANCES, **(tolerances or {})}
    rows = []
    for net, value in networks.items():
        spec, module = value if isinstance(value, tuple) else (get_spec(net), value)
        if net not in inputs:
            raise ConfigError("inputs", sorted(inputs), f"an entry for every network (missing {net!r})")
        if net not in tolerances:
            raise ConfigError("tolerances", sorted(tolerances), f"a Tolerance for network {net!r}")
        outs = {}
        for name, backend in backends.items():
            t0 = time.perf_counter()
            if progress:
                progress(f"{net} on {name}: " + ("exporting to ONNX and running (minutes on a CPU)"
                                                 if _exports(backend) else "running") + " ...")
            outs[name] = _run(backend, spec, module, inputs[net])
            if progress:
                progress(f"{net} on {name}: done in {time.perf_counter() - t0:.1f} s")
        for name in backends:
            if name != reference:
                rows.extend(_compare(net, name, outs[name], reference, outs[reference], tolerances[net]))
    return VerifyReport(reference, rows)


def _exports(backend) -> bool:
    """An ONNX Runtime backend without prebuilt graphs exports each network on the fly."""
    return type(backend).__name__ == "OrtBackend" and getattr(backend, "engines", None) is None


def _runner(backend, spec: NetworkSpec, network):
    """A runner made the way the pipeline makes it; the caller's module is never touched."""
    if isinstance(network, Checkpoint):  # prebuilt graphs/engines are checked against its weights
        return backend.load_network(spec, dataclasses.replace(network, module=copy.deepcopy(network.module)))
    return backend.from_module(spec, copy.deepcopy(network))


def _run(backend, spec: NetworkSpec, network, feed: dict) -> dict:
    runner = _runner(backend, spec, network)
    feed = {k: v.to(runner.device) for k, v in feed.items()}
    out = runner(**feed)
    # copy out at once: runners may own their output buffers (valid only until the next call)
    return {k: v.detach().float().cpu().numpy().copy() for k, v in out.items()}


def _compare(net: str, backend: str, got: dict, reference: str, ref: dict, tol: Tolerance) -> list:
    from polygraphy.comparator import SimpleCompareFunc
    from polygraphy.comparator.struct import IterationResult
    from polygraphy.logger import G_LOGGER

    rows = []
    compare = SimpleCompareFunc(atol=tol.atol, rtol=tol.rtol, check_shapes=True)
    for name, r in ref.items():
        g = got.get(name)
        if g is None or g.shape != r.shape:
            note = "missing output" if g is None else f"shape {g.shape} != reference {r.shape}"
            rows.append(OutputComparison(net, backend, name, tuple(r.shape), *(float("nan"),) * 4,
                                         float(np.abs(r).max(initial=0.0)), tol.atol, tol.rtol, False, note))
            continue
        with G_LOGGER.verbosity(G_LOGGER.CRITICAL):  # the report is ours; keep Polygraphy quiet
            # reference second: Polygraphy divides by the second output for the relative error
            res = compare(IterationResult({name: g}, runner_name=backend),
                          IterationResult({name: r}, runner_name=reference))[name]
        rows.append(OutputComparison(net, backend, name, tuple(r.shape), res.max_absdiff, res.mean_absdiff,
                                     res.max_reldiff, res.mean_reldiff, float(np.abs(r).max(initial=0.0)),
                                     tol.atol, tol.rtol, bool(res)))
    return rows


# --- `uavrt verify`: release (or demo) networks, PyTorch vs ONNX Runtime vs the backend under test --
def verify_release(engines, *, weights=None, demo: bool = False, networks=("unet", "vae_3d", "raft"),
                   backend: str = "tensorrt", device: str = "cuda", seed: int = 0, progress=None) -> VerifyReport:
    """Compare `backend` (its graphs/engines in `engines`) with PyTorch fp32 (the reference) and
    ONNX Runtime fp32 on seeded inputs, for release weights (`weights`) or the demo model.

    Input sizes: the spec's small example sizes, moved into the TensorRT engine's profile when
    the backend is TensorRT. ONNX Runtime uses `<network>.fp32.onnx` from `engines` when all are
    there, else exports the networks on the fly.
    """
    from .models.release import load_network
    from .runtime.ort_backend import OrtBackend
    from .runtime.torch_backend import TorchBackend

    if bool(demo) == bool(weights):
        raise ConfigError("weights", weights, "a release weights folder, or demo=True (exactly one of them)")
    check_choice("backend", backend, ("tensorrt", "onnxruntime"))
    names = [check_choice("network", n, tuple(SPECS)) for n in networks]
    engines = Path(engines)
    if not engines.is_dir():
        raise ConfigError("engines", str(engines), "an existing folder of exported graphs/engines (uavrt export)")
    if demo:
        from .models.demo import demo_weights_dir
        weights = demo_weights_dir(seed, with_raft="raft" in names)
    loaded = {n: load_network(weights, n) for n in names}
    have_graphs = all((engines / f"{n}.fp32.onnx").exists() for n in names)
    if not have_graphs and progress:
        progress(f"no fp32 ONNX graphs for {', '.join(names)} in {str(engines)!r}: exporting them on the fly for "
                 f"ONNX Runtime (minutes per network on a CPU; `uavrt export --out {engines} --precision fp32` "
                 "once avoids it)")
    backends = {"torch": TorchBackend(device, "fp32"),
                "onnxruntime": OrtBackend(device="cpu", precision="fp32", engines=engines if have_graphs else None)}
    profiles = {}
    if backend == "tensorrt":
        from .export import cache
        from .runtime.trt_backend import TrtBackend
        backends["tensorrt"] = TrtBackend(engines, device=device, precision="fp16")
        entries = cache.load_manifest(engines)["engines"]
        profiles = {n: entries[f"{n}.fp16"]["fields"]["profiles"] for n in names if f"{n}.fp16" in entries}
    inputs = {}
    for n in names:
        spec = get_spec(n)
        dims = verify_dims(spec, loaded[n].config, profiles.get(n))
        inputs[n] = spec.sample_inputs(dims, precision="fp32", seed=seed)
    return verify(backends, loaded, inputs, reference="torch", progress=progress)


def verify_dims(spec: NetworkSpec, config: dict, profiles: dict | None = None) -> dict:
    """The spec's example sizes (config dims from `config`), clamped into an engine's profile."""
    dims = spec.example_dims(config)
    for t in spec.inputs if profiles else ():
        lo, _, hi = profiles[t.name]
        for d, a, b in zip(t.dims, lo, hi):
            if isinstance(d, str):
                dims[d] = min(max(dims[d], a), b)
    return dims

