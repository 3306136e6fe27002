"""Post-export work on an ONNX graph: dim names, constant folding, checks, atomic saving.

Graphs over 2 GB (the release U-Net in fp32 is 2.7 GB) cannot be serialised as one protobuf:
they are saved with their tensors in ONE `<graph>.onnx.data` file beside the graph, and every
check that would serialise the model works on the saved path instead.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from pathlib import Path

from ..errors import UavrtError
from ..fsutil import atomic_path, check_writable

PROTOBUF_LIMIT = 2**31 - 1
# above this many initializer bytes the graph is saved with external data (leaves room for the
# graph structure itself under protobuf's 2 GB limit)
EXTERNAL_DATA_THRESHOLD = 1_800_000_000


class ExportError(UavrtError):
    """A network cannot be exported as asked (names what and why)."""


def data_path(graph_path) -> Path:
    graph_path = Path(graph_path)
    return graph_path.with_name(graph_path.name + ".data")


def initializer_bytes(model) -> int:
    return sum(len(t.raw_data) if t.HasField("raw_data") else 0 for t in model.graph.initializer)


def rename_dims(program, spec) -> dict:
    """Give the exported graph's symbolic dims the spec's names (B, T, H, ...); returns the map.

    torch.export names symbols s0, s1, ... and writes derived dims as expressions ("2*s3",
    "8*s5" for RAFT's H = 8*H8): an input dim that is `k*sym` maps sym to "<name>/k".
    """
    mapping: dict = {}
    for t, value in zip(spec.inputs, program.model.graph.inputs):
        for d, dim in zip(t.dims, value.shape):
            sym = getattr(dim, "value", dim)
            if not isinstance(d, str) or not isinstance(sym, str):
                continue
            mapping[sym] = d
            m = re.fullmatch(r"(\d+)\*(\w+)", sym)
            if m:
                mapping[m.group(2)] = f"{d}/{m.group(1)}"
    program.rename_axes(mapping)
    return mapping


def check_io(model, spec, dims: dict) -> None:
    """Inputs/outputs must carry the spec's names and keep every dynamic dim symbolic.

    `dims`: the fixed sizes of config dims (e.g. C of the U-Net's text embeddings).
    """
    names_in = [v.name for v in model.graph.input]
    names_out = [v.name for v in model.graph.output]
    if names_in != list(spec.input_names) or names_out != list(spec.output_names):
        raise ExportError(f"{spec.name}: exported graph has inputs {names_in} / outputs {names_out}, "
                          f"expected {list(spec.input_names)} / {list(spec.output_names)}")
    for t, v in zip(spec.inputs, model.graph.input):
        got = [d.dim_param if d.HasField("dim_param") else d.dim_value for d in v.type.tensor_type.shape.dim]
        for want, have in zip(t.dims, got):
            want = dims.get(want, want)
            if isinstance(want, str) and not isinstance(have, str):
                raise ExportError(f"{spec.name}.{t.name}: dim {want!r} was specialised to {have} during "
                                  f"export (the model's code makes it static); dims {got}")
            if isinstance(want, int) and want != have:
                raise ExportError(f"{spec.name}.{t.name}: dims {got}, expected {list(t.dims)}")


def rewrite_integer_clip(model) -> int:
    """Integer Clip -> Max/Min, in place; returns the number rewritten.

    TensorRT's Clip takes floating inputs only, while Max/Min take INT32/INT64, and
    Clip(x, lo, hi) == Min(Max(x, lo), hi) exactly for integers. torch exports
    `int_tensor.clamp(...)` (e.g. bucket indices computed from shapes) as an INT64 Clip.
    """
    from onnx import TensorProto, helper

    g = model.graph
    types = {v.name: v.type.tensor_type.elem_type for v in list(g.input) + list(g.value_info) + list(g.output)}
    types.update({t.name: t.data_type for t in g.initializer})
    nodes, count = [], 0
    for node in g.node:
        if node.op_type != "Clip" or types.get(node.input[0]) not in (TensorProto.INT64, TensorProto.INT32):
            nodes.append(node)
            continue
        x, y = node.input[0], node.output[0]
        lo = node.input[1] if len(node.input) > 1 and node.input[1] else None
        hi = node.input[2] if len(node.input) > 2 and node.input[2] else None
        steps = [("Max", lo), ("Min", hi)]
        steps = [(op, b) for op, b in steps if b]
        if not steps:
            nodes.append(helper.make_node("Identity", [x], [y], name=node.name))
        for i, (op, bound) in enumerate(steps):
            out = y if i == len(steps) - 1 else f"{y}__max"
            nodes.append(helper.make_node(op, [x, bound], [out], name=f"{node.name}__{op.lower()}"))
            x = out
        count += 1
    del g.node[:]
    g.node.extend(nodes)
    return count


@contextlib.contextmanager
def _quiet_polygraphy():
    from polygraphy.logger import G_LOGGER
    old = G_LOGGER.module_severity
    G_LOGGER.module_severity = G_LOGGER.ERROR
    try:
        yield
    finally:
        G_LOGGER.module_severity = old


def fold_and_sanitize(model):
    """Polygraphy's sanitizer: constant folding (shape subgraphs included, ORT-evaluated) +
    dead-node cleanup + shape inference, repeated until nothing changes."""
    from polygraphy.backend.onnx import fold_constants

    with _quiet_polygraphy():
        return fold_constants(model, num_passes=None, do_shape_inference=True, fold_shapes=True,
                              error_ok=False, allow_onnxruntime_shape_inference=False)


def check_saved(path) -> None:
    """onnx.checker (full_check: includes strict shape inference) on the saved graph + data."""
    import onnx

    try:
        onnx.checker.check_model(str(path), full_check=True)
    except Exception as e:  # ValidationError / InferenceError
        raise ExportError(f"{path}: exported graph fails onnx.checker: {type(e).__name__}: {e}") from e


def save_graph(model, path, *, overwrite: bool = False, external_data: bool | None = None) -> Path:
    """Save atomically; tensors in `<path>.data` when asked or when the graph is too big.

    Written to a temporary folder beside `path`, checked there, then moved: the data file
    first, the graph last, so a complete graph file always has its data beside it.
    """
    import onnx

    path = check_writable(path, overwrite)
    data = data_path(path)
    if external_data is None:
        external_data = initializer_bytes(model) > EXTERNAL_DATA_THRESHOLD
    if external_data:
        check_writable(data, overwrite)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{path.name}.partial.", dir=path.parent))
    try:
        tmp = tmp_dir / path.name
        if external_data:
            onnx.save_model(model, str(tmp), save_as_external_data=True, all_tensors_to_one_file=True,
                            location=data.name, size_threshold=1024)
        else:
            onnx.save_model(model, str(tmp))
        check_saved(tmp)
        with atomic_path(path, overwrite) as final_tmp:
            os.replace(tmp, final_tmp)
            if external_data:
                os.replace(tmp_dir / data.name, data)
            elif data.exists():  # a stale data file of an earlier external-data export
                data.unlink()
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    return path
