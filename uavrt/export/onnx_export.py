"""Export the networks to ONNX (opset 21, dynamic shapes), fp32 and fp16.

Data path of one export:
  module --[fp16: to_mixed_fp16(policy)]--> torch.export.export(dynamic dims of the spec)
  --> torch.onnx.export(dynamo, opset 21) --> dims renamed to the spec's names
  --> [fp16: Softmax computed in fp32] --> integer Clip as Max/Min (TensorRT)
  --> Polygraphy constant folding + cleanup
  --> metadata_props --> checked (onnx.checker full_check) --> saved atomically.
`torch.export.export` runs first on its own: if the model's code specialises a dynamic dim, it
raises with the reason, where `torch.onnx.export` alone would silently fall back to a graph
with fixed sizes.

Output files: `<out>/<network>.<precision>.onnx` (+ `.onnx.data` for graphs over 2 GB).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import torch

from ..errors import ConfigError, check_choice
from ..fsutil import check_writable
from . import fp16 as fp16_mod
from .metadata import build_metadata, set_metadata, weights_sha256
from .onnx_graph import (
    ExportError,
    check_io,
    data_path,
    fold_and_sanitize,
    rename_dims,
    rewrite_integer_clip,
    save_graph,
)
from ..spec import SPECS, NetworkSpec

OPSET = 21
NETWORKS = tuple(SPECS)  # unet, vae_3d, vae_video, raft
PRECISIONS = ("fp32", "fp16")

Progress = Callable[[int, int, str], None]  # (steps done, total steps, what is happening)


def graph_path(out_dir, network: str, precision: str) -> Path:
    return Path(out_dir) / f"{network}.{precision}.onnx"


def module_config(module: torch.nn.Module) -> dict:
    """The config dict of a uavrt network module (dataclass or dict `config`), else {}."""
    cfg = getattr(module, "config", None)
    if dataclasses.is_dataclass(cfg):
        return dataclasses.asdict(cfg)
    return dict(cfg) if isinstance(cfg, dict) else {}


def export_dynamic_shapes(spec: NetworkSpec) -> dict:
    """torch.export dynamic_shapes: one shared Dim per named dim (ranges from the spec).

    Multiple-of-k dims are `k * Dim(...)`, so the graph carries the constraint.
    """
    from torch.export import Dim

    dims = {}
    for name in spec.dynamic_dims():
        r = spec.ranges.get(name)
        k = r.multiple_of if r else 1
        lo, hi = (r.min, r.max) if r else (1, 4096)
        if k > 1:
            dims[name] = k * Dim(f"{name}_{k}", min=max(1, lo // k), max=hi // k)
        else:
            dims[name] = Dim(name, min=lo, max=hi)
    return {t.name: {i: dims[d] for i, d in enumerate(t.dims) if isinstance(d, str) and d in dims}
            for t in spec.inputs}


def _io_cast_hooks(module, spec: NetworkSpec, precision: str, body_dtype) -> list:
    """Graph I/O in the spec's dtypes around a body in `body_dtype` (hooks on the root, so the
    initializer names stay the state-dict names)."""
    out_dtypes = [t.torch_dtype(precision) for t in spec.outputs]

    def enter(_m, args, kwargs):
        return args, {k: (v.to(body_dtype) if v.is_floating_point() else v) for k, v in kwargs.items()}

    def leave(_m, _a, _k, out):
        if isinstance(out, torch.Tensor):
            return out.to(out_dtypes[0])
        return tuple(o.to(d) for o, d in zip(out, out_dtypes))

    return [module.register_forward_pre_hook(enter, with_kwargs=True),
            module.register_forward_hook(leave, with_kwargs=True)]


def to_onnx_model(module: torch.nn.Module, spec: NetworkSpec, *, precision: str = "fp32",
                  config: dict | None = None, dims: dict | None = None,
                  policy: fp16_mod.Fp16Policy | None = None, step: Callable[[str], None] = lambda s: None):
    """Export to an in-memory, folded onnx.ModelProto (no metadata, not saved)."""
    check_choice("precision", precision, PRECISIONS)
    dims = dims or spec.example_dims(config)
    if precision == "fp16":
        policy = policy or fp16_mod.POLICIES.get(spec.name, fp16_mod.Fp16Policy())
        net = fp16_mod.to_mixed_fp16(module, policy)
        body = torch.float16 if policy.root_fp16 else torch.float32
    else:
        net, body = module.eval(), torch.float32
        if any(p.is_floating_point() and p.dtype != torch.float32 for p in net.parameters()):
            raise ExportError(f"{spec.name}: fp32 export needs float32 weights; found "
                              f"{sorted({str(p.dtype) for p in net.parameters()})}")
    inputs = spec.sample_inputs(dims, precision=precision)
    handles = _io_cast_hooks(net, spec, precision, body)
    try:
        step("torch.export")
        try:
            with torch.no_grad():
                ep = torch.export.export(net, (), kwargs=inputs, dynamic_shapes=export_dynamic_shapes(spec),
                                         strict=False)
        except Exception as e:
            raise ExportError(f"{spec.name} ({precision}): torch.export failed: {type(e).__name__}: "
                              f"{str(e)[:3000]}") from e
        step("onnx translation")
        program = torch.onnx.export(ep, (), kwargs=inputs, dynamo=True, opset_version=OPSET,
                                    output_names=list(spec.output_names), optimize=True, verbose=False)
    finally:
        for h in handles:
            h.remove()
    rename_dims(program, spec)
    model = program.model_proto
    del program, ep
    if precision == "fp16":
        fp16_mod.cast_ops_to_fp32(model, policy.fp32_onnx_ops)
    rewrite_integer_clip(model)  # TensorRT: Clip is float-only
    step("constant folding")
    model = fold_and_sanitize(model)
    check_io(model, spec, {d: dims[d] for d in spec.config_dims})
    return model


def export_onnx(module: torch.nn.Module, spec: NetworkSpec, path, *, precision: str = "fp32",
                weights_hash: str | None = None, config: dict | None = None, overwrite: bool = False,
                external_data: bool | None = None, policy: fp16_mod.Fp16Policy | None = None,
                step: Callable[[str], None] = lambda s: None) -> Path:
    """Export one network to `path`; returns the path.

    weights_hash: sha256 of the source weights (default: `weights_sha256(module.state_dict())`);
    config: the network's release config dict (default: the module's own config).
    """
    path = check_writable(path, overwrite)
    config = module_config(module) if config is None else config
    weights_hash = weights_hash or weights_sha256(module.state_dict())
    if precision == "fp16" and policy is None:
        policy = fp16_mod.POLICIES.get(spec.name, fp16_mod.Fp16Policy())
    model = to_onnx_model(module, spec, precision=precision, config=config, policy=policy, step=step)
    set_metadata(model, build_metadata(spec, precision=precision, weights_hash=weights_hash, config=config,
                                       opset=OPSET, fp16_policy=policy.describe() if policy else None))
    model.doc_string = f"uavrt {spec.name} ({precision})"
    step("check + save")
    return save_graph(model, path, overwrite=overwrite, external_data=external_data)


def export_networks(models: dict, out_dir, *, precisions=PRECISIONS, networks=None, overwrite: bool = False,
                    progress: Progress | None = None) -> list:
    """Export several networks; returns the written graph paths.

    models: {network name: (module, weights_hash, config)} for names in unet, vae_3d,
    vae_video, raft; `networks` picks a subset (default: all given). Every output is checked
    for existence BEFORE any export starts (OutputExistsError unless overwrite).
    """
    for name in models:
        check_choice("network", name, NETWORKS)
    names = list(models) if networks is None else list(networks)
    for name in names:
        check_choice("network", name, NETWORKS)
        if name not in models:
            raise ConfigError("network", name, "one of the networks given: " + ", ".join(map(repr, models)))
    if isinstance(precisions, str):
        precisions = (precisions,)
    if not precisions:
        raise ConfigError("precisions", precisions, "a non-empty subset of " + ", ".join(map(repr, PRECISIONS)))
    for p in precisions:
        check_choice("precision", p, PRECISIONS)

    jobs = [(n, p) for n in names for p in precisions]
    for n, p in jobs:  # fail before hours of work, not after
        check_writable(graph_path(out_dir, n, p), overwrite)
        check_writable(data_path(graph_path(out_dir, n, p)), overwrite)

    steps = ("torch.export", "onnx translation", "constant folding", "check + save")
    total, done, written = len(jobs) * len(steps), 0, []
    for n, p in jobs:
        module, weights_hash, config = models[n]

        def step(what, n=n, p=p):
            nonlocal done
            if progress is not None:
                progress(done, total, f"{n} {p}: {what}")
            done += 1

        written.append(export_onnx(module, SPECS[n], graph_path(out_dir, n, p), precision=p,
                                   weights_hash=weights_hash, config=config, overwrite=overwrite, step=step))
        if progress is not None:
            progress(done, total, f"{n} {p}: written {written[-1]}")
    return written
