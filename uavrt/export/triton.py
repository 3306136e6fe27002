"""A Triton Inference Server model repository for the exported networks.

    <repo>/<network>/config.pbtxt
    <repo>/<network>/1/model.onnx   (+ its external data file, same name as in the graph)
    <repo>/<network>/1/model.plan   (TensorRT engines: platform tensorrt_plan)

Inputs and outputs come from the network specs (uavrt/spec.py) — the same specs that named the
exported graph's inputs — so a C++ client calling Triton sees exactly the tensors uavrt's
backends see. Dynamic dims are -1; dims fixed by the weights (the U-Net's text width) are read
from the exported graph. The batch dim is part of every spec (B: [uncond, cond] for guidance),
so models declare max_batch_size 0 and carry B as a dim. Scalar inputs (timestep, w_lr) are
declared as [1] reshaped to [] (Triton's convention for rank-0 tensors).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from ..errors import ConfigError, EngineMismatch, InputError
from ..fsutil import atomic_path, check_writable
from ..spec import SPECS, NetworkSpec, TensorSpec

PLATFORMS = {"onnx": "onnxruntime_onnx", "plan": "tensorrt_plan"}
_ONNX_ELEM = {1: "TYPE_FP32", 10: "TYPE_FP16", 7: "TYPE_INT64"}  # onnx.TensorProto enum -> Triton


def tensor_type(t: TensorSpec, precision: str) -> str:
    if not t.is_float:
        return {"int64": "TYPE_INT64"}[t.dtype]
    return "TYPE_FP16" if precision == "fp16" and not t.keep_fp32 else "TYPE_FP32"


def _graph_inputs(onnx_path: Path) -> dict:
    """{tensor name: (Triton type, dims with -1 for symbolic)} of a graph's inputs and outputs."""
    import onnx
    model = onnx.load(str(onnx_path), load_external_data=False)
    out = {}
    for vi in list(model.graph.input) + list(model.graph.output):
        tt = vi.type.tensor_type
        dims = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in tt.shape.dim)
        out[vi.name] = (_ONNX_ELEM.get(tt.elem_type, f"onnx elem type {tt.elem_type}"), dims)
    return out


def tensor_dims(t: TensorSpec, spec: NetworkSpec, graph: dict | None) -> list:
    dims = []
    for i, d in enumerate(t.dims):
        if isinstance(d, int):
            dims.append(d)
        elif d in spec.config_dims and graph is not None and t.name in graph and graph[t.name][1][i] > 0:
            dims.append(graph[t.name][1][i])  # fixed by the weights: the graph knows the value
        else:
            dims.append(-1)
    return dims


def _tensor_block(t: TensorSpec, spec: NetworkSpec, precision: str, graph: dict | None) -> str:
    dims = tensor_dims(t, spec, graph)
    lines = [f'    name: "{t.name}"', f"    data_type: {tensor_type(t, precision)}"]
    if dims:
        lines.append(f"    dims: [ {', '.join(str(d) for d in dims)} ]")
    else:  # rank 0
        lines += ["    dims: [ 1 ]", "    reshape: { shape: [ ] }"]
    return "  {\n" + "\n".join(lines) + "\n  }"


def config_pbtxt(spec: NetworkSpec, *, kind: str, precision: str, graph: dict | None = None,
                 instance_kind: str = "KIND_GPU", instances: int = 1) -> str:
    """The text-format ModelConfig of one network."""
    ins = ",\n".join(_tensor_block(t, spec, precision, graph) for t in spec.inputs)
    outs = ",\n".join(_tensor_block(t, spec, precision, graph) for t in spec.outputs)
    return (f"# written by uavrt export --triton-repo: network {spec.name}, {precision}\n"
            f'name: "{spec.name}"\n'
            f'platform: "{PLATFORMS[kind]}"\n'
            f"max_batch_size: 0\n"
            f"input [\n{ins}\n]\n"
            f"output [\n{outs}\n]\n"
            f"instance_group [ {{ kind: {instance_kind} count: {instances} }} ]\n")


def _check_graph(spec: NetworkSpec, graph: dict, precision: str, path: Path) -> None:
    """The exported graph must have the spec's tensors with the types the config declares."""
    for t in spec.inputs + spec.outputs:
        if t.name not in graph:
            raise EngineMismatch(f"{path.name}: has no tensor {t.name!r} of the {spec.name} spec "
                                 f"(has {sorted(graph)})")
        got, dims = graph[t.name]
        want = tensor_type(t, precision)
        if got != want:
            raise EngineMismatch(f"{path.name}: tensor {t.name!r} is {got}, the spec at {precision} says {want}")
        if len(dims) != len(t.dims):
            raise EngineMismatch(f"{path.name}: tensor {t.name!r} has rank {len(dims)}, the spec says {t.dims}")


def _place(src: Path, dst: Path, overwrite: bool) -> None:
    """Copy atomically. Not a hard link: onnx refuses external data files with several links
    (its guard against hard-link attacks), so a linked repository would not load."""
    with atomic_path(dst, overwrite) as tmp:
        shutil.copyfile(src, tmp)


def write_triton_repo(engines_dir, repo_dir, *, networks=None, precision: str = "fp16", kind: str = "onnx",
                      overwrite: bool = False, instance_kind: str = "KIND_GPU", progress=None) -> list:
    """Write `<repo_dir>/<network>/{config.pbtxt, 1/model.<kind>}` for each network exported to
    `engines_dir` (uavrt export). Returns the written config paths."""
    if kind not in PLATFORMS:
        raise ConfigError("kind", kind, "'onnx' (ONNX Runtime backend) or 'plan' (TensorRT backend)")
    if precision not in ("fp32", "fp16"):
        raise ConfigError("precision", precision, "'fp32' or 'fp16'")
    engines_dir, repo_dir = Path(engines_dir), Path(repo_dir)
    names = list(networks) if networks is not None else [n for n in SPECS if
                                                         (engines_dir / f"{n}.{precision}.onnx").is_file()]
    if not names:
        raise InputError(f"no exported {precision} graphs in {str(engines_dir)!r} (run uavrt export first)")
    jobs = []
    for name in names:
        if name not in SPECS:
            raise ConfigError("networks", name, "names among " + ", ".join(SPECS))
        onnx_path = engines_dir / f"{name}.{precision}.onnx"
        src = onnx_path if kind == "onnx" else engines_dir / f"{name}.{precision}.plan"
        if not src.is_file():
            raise InputError(f"{str(src)!r} does not exist (uavrt export{' --trt' if kind == 'plan' else ''})")
        if not onnx_path.is_file():
            raise InputError(f"{str(onnx_path)!r} does not exist: the config's fixed dims come from the graph")
        model_dir = repo_dir / name
        for p in (model_dir / "config.pbtxt", model_dir / "1" / f"model.{kind}"):
            check_writable(p, overwrite)  # refuse before writing anything
        jobs.append((name, onnx_path, src, model_dir))
    written = []
    for name, onnx_path, src, model_dir in jobs:
        spec = SPECS[name]
        graph = _graph_inputs(onnx_path)
        _check_graph(spec, graph, precision, onnx_path)
        (model_dir / "1").mkdir(parents=True, exist_ok=True)
        _place(src, model_dir / "1" / f"model.{kind}", overwrite)
        data = onnx_path.with_name(onnx_path.name + ".data")
        if kind == "onnx" and data.is_file():  # the graph refers to its data file by this name
            _place(data, model_dir / "1" / data.name, overwrite)
        cfg = model_dir / "config.pbtxt"
        with atomic_path(cfg, overwrite) as tmp:
            tmp.write_text(config_pbtxt(spec, kind=kind, precision=precision, graph=graph,
                                        instance_kind=instance_kind))
        written.append(cfg)
        if progress:
            progress(f"triton: {name} -> {model_dir}")
    return written
