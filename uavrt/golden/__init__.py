"""Run golden-vector cases (the format of Upscale-A-Video's reference set) against uavrt.

A golden directory holds `index.json` (cases -> kind, file) and per case `<case>.json`
(config, args, tolerance[name].atol) + `<case>.safetensors` (`inputs.*`, `expected.*`,
`trace.*`). Each case kind has a module `uavrt.golden.<module>` with
`run(case: Case, ctx: Context) -> dict[name, Tensor]` returning the tensors named like the
case's `expected.*` (without the prefix). This module compares them with the tolerances.
"""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import torch

from ..errors import InputError

# kind -> module implementing it
KIND_MODULES = {
    "unet": "unet", "vae": "vae", "raft": "raft", "raft_bi": "raft",
    "propagation": "propagation", "warp_pieces": "propagation",
    "scheduler": "scheduler", "low_res_scheduler": "scheduler", "color": "color",
    "pipeline": "pipeline",
}


@dataclass(frozen=True)
class Context:
    """How to run cases: which backend makes the network runners, which propagator."""

    backend: object  # uavrt.runtime.backend.Backend
    propagator: str = "torch"  # "torch" (reference) | "kernel"
    unet_batch: int = 1  # (tile, clip) pieces per U-Net call in pipeline cases


@dataclass
class Case:
    name: str
    kind: str
    dir: Path
    meta: dict

    @cached_property
    def tensors(self) -> dict:
        from safetensors.torch import load_file
        return load_file(str(self.dir / self.meta.get("file", f"{self.name}.safetensors")))

    def input(self, name: str) -> torch.Tensor:
        return self.tensors[f"inputs.{name}"]

    def has_input(self, name: str) -> bool:
        return f"inputs.{name}" in self.tensors

    @property
    def expected_names(self) -> list:
        return [k[len("expected."):] for k in self.tensors if k.startswith("expected.")]

    def weights(self, key: str = "weights") -> dict:
        """The case's weights file, floating tensors up-cast to float32 (they are stored fp16)."""
        from safetensors.torch import load_file
        sd = load_file(str(self.dir / self.meta[key]))
        return {k: (v.float() if v.is_floating_point() else v) for k, v in sd.items()}


@dataclass
class CaseResult:
    case: str
    tensor: str
    max_abs: float
    max_rel: float
    atol: float
    passed: bool
    error: str = ""

    def line(self) -> str:
        if self.error:
            return f"FAIL {self.case}: {self.error}"
        return (f"{'ok  ' if self.passed else 'FAIL'} {self.case}.{self.tensor}: max_abs={self.max_abs:.3g} "
                f"max_rel={self.max_rel:.3g} atol={self.atol:.3g}")


def load_cases(directory, only=None) -> list:
    directory = Path(directory)
    index_path = directory / "index.json"
    if not index_path.is_file():
        raise InputError(f"golden directory {str(directory)!r} has no index.json")
    index = json.loads(index_path.read_text())
    cases = []
    for name, entry in index["cases"].items():
        if only and name not in only and entry["kind"] not in only:
            continue
        meta = json.loads((directory / f"{name}.json").read_text())
        meta.setdefault("file", entry.get("file", f"{name}.safetensors"))
        cases.append(Case(name, entry["kind"], directory, meta))
    return cases


def compare(case: Case, name: str, got: torch.Tensor) -> CaseResult:
    ref = case.tensors[f"expected.{name}"]
    tol = case.meta.get("tolerance", {}).get(name, {})
    atol = float(tol.get("atol", 0.0))
    if tuple(got.shape) != tuple(ref.shape):
        return CaseResult(case.name, name, float("inf"), float("inf"), atol, False,
                          f"{name}: shape {tuple(got.shape)} != expected {tuple(ref.shape)}")
    if not ref.is_floating_point():
        diff = (got.to(torch.int64) - ref).abs().max().item() if ref.numel() else 0
        return CaseResult(case.name, name, float(diff), float(diff), 0.0, diff == 0)
    got64, ref64 = got.double().cpu(), ref.double()
    if not torch.isfinite(got64).all():
        return CaseResult(case.name, name, float("nan"), float("nan"), atol, False, f"{name}: non-finite output")
    diff = (got64 - ref64).abs().max().item() if ref.numel() else 0.0
    rel = diff / max(ref64.abs().max().item(), 1e-12)
    return CaseResult(case.name, name, diff, rel, atol, diff <= atol)


def run_case(case: Case, ctx: Context) -> list:
    module = KIND_MODULES.get(case.kind)
    if module is None:
        return [CaseResult(case.name, "*", 0, 0, 0, False, f"unknown case kind {case.kind!r}; "
                           f"known: {', '.join(sorted(KIND_MODULES))}")]
    impl = importlib.import_module(f"{__name__}.{module}")
    try:
        outputs = impl.run(case, ctx)
    except Exception as e:  # report the case, keep going with the others
        return [CaseResult(case.name, "*", 0, 0, 0, False, f"{type(e).__name__}: {e}")]
    results = []
    for name in case.expected_names:
        if name not in outputs:
            results.append(CaseResult(case.name, name, 0, 0, 0, False, f"{name}: not produced"))
        else:
            results.append(compare(case, name, outputs[name]))
    return results


def run_golden(directory, ctx: Context, only=None, echo=None) -> list:
    results = []
    for case in load_cases(directory, only):
        for r in run_case(case, ctx):
            results.append(r)
            if echo:
                echo(r.line())
    return results
