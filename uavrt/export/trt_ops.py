"""TensorRT-readiness of an ONNX graph, checked without TensorRT.

Every node must be an op the TensorRT ONNX parser supports, with a supported dtype, within the
parser's documented restrictions (GridSample 4-D only, Resize modes, constant reduce axes, ...).
The op table is `trt_ops_table.json` beside this file; its `_source` names where it comes from
(onnx/onnx-tensorrt `docs/operators.md`, the TensorRT 10.15 matrix, the newest reachable from
this project, updated where NVIDIA's TensorRT 11 pages say so: opset 25, Swish). Only the
restrictions that can matter for a graph are checked; the JSON lists them in words.
`build_engines` calls `require_trt_ready` on every graph before its first (minutes-long) build.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

# onnx TensorProto elem types -> the table's type names
_TYPE_NAMES = {1: "FP32", 2: "UINT8", 3: "INT8", 4: "UINT16", 5: "INT16", 6: "INT32", 7: "INT64", 8: "STRING",
               9: "BOOL", 10: "FP16", 11: "DOUBLE", 12: "UINT32", 13: "UINT64", 14: "COMPLEX64",
               15: "COMPLEX128", 16: "BF16", 17: "FP8", 18: "FP8", 19: "FP8", 20: "FP8", 21: "UINT4",
               22: "INT4", 23: "FP4"}
_QUANTIZED = {"INT8", "INT4", "FP8", "FP4"}
_QDQ = {"QuantizeLinear", "DequantizeLinear"}
_REDUCE = {"ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceMax", "ReduceMean", "ReduceMin",
           "ReduceProd", "ReduceSum", "ReduceSumSquare"}
_RESIZE_COORD = {"half_pixel", "pytorch_half_pixel", "tf_half_pixel_for_nn", "asymmetric", "align_corners"}
_RESIZE_NEAREST = {"floor", "ceil", "round_prefer_floor", "round_prefer_ceil"}


@dataclass(frozen=True)
class Problem:
    node: str
    op_type: str
    reason: str

    def __str__(self):
        return f"{self.op_type} node {self.node!r}: {self.reason}"


@lru_cache(maxsize=1)
def load_table() -> dict:
    return json.loads(resources.files("uavrt.export").joinpath("trt_ops_table.json").read_text())


def _attr(node, name, default=None):
    from onnx import helper
    for a in node.attribute:
        if a.name == name:
            v = helper.get_attribute_value(a)
            return v.decode() if isinstance(v, bytes) else v
    return default


class _Graph:
    """What the checks need to know about values: dtypes, ranks, constants, consumers."""

    def __init__(self, model):
        import onnx
        inferred = onnx.shape_inference.infer_shapes(model)  # structure only: no tensor data needed
        g = inferred.graph
        self.types, self.ranks = {}, {}
        for v in list(g.input) + list(g.value_info) + list(g.output):
            tt = v.type.tensor_type
            self.types[v.name] = tt.elem_type
            if tt.HasField("shape"):
                self.ranks[v.name] = len(tt.shape.dim)
        self.consts = {}
        for t in g.initializer:
            self.types[t.name], self.ranks[t.name], self.consts[t.name] = t.data_type, len(t.dims), t
        self.io = {v.name for v in list(g.input) + list(g.output)}
        self.used = {i for n in _all_nodes(g) for i in n.input} | {v.name for v in g.output}
        for n in _all_nodes(g):
            if n.op_type == "Constant" and n.output:
                self.consts[n.output[0]] = _attr(n, "value")


def _all_nodes(graph):
    for n in graph.node:
        yield n
        for a in n.attribute:
            if a.g is not None and a.g.node:
                yield from _all_nodes(a.g)
            for sub in a.graphs:
                yield from _all_nodes(sub)


def _const_values(g: _Graph, name: str):
    from onnx import numpy_helper
    t = g.consts.get(name)
    if t is None or not hasattr(t, "dims"):
        return None
    try:
        return numpy_helper.to_array(t).reshape(-1).tolist()
    except (OSError, ValueError):  # external data not loaded: constant, but value unknown here
        return []


def _restrictions(n, g: _Graph) -> list:
    op, out = n.op_type, []
    if op == "GridSample" and g.ranks.get(n.input[0], 4) != 4:
        out.append(f"input must be 4-D (TensorRT supports 2-D spatial GridSample only), found rank {g.ranks[n.input[0]]}")
    if op in ("AveragePool", "MaxPool", "LpPool"):
        k = _attr(n, "kernel_shape") or []
        if op != "LpPool" and len(k) not in (2, 3):
            out.append(f"only 2-D or 3-D pooling, kernel_shape {k}")
        if any(d != 1 for d in (_attr(n, "dilations") or [])):
            out.append(f"dilations must be all ones, found {_attr(n, 'dilations')}")
        if op == "MaxPool" and len(n.output) > 1 and n.output[1] in g.used:
            out.append("the Indices output is unsupported")
    if op == "Resize":
        coord = _attr(n, "coordinate_transformation_mode", "half_pixel")
        mode, nearest = _attr(n, "mode", "nearest"), _attr(n, "nearest_mode", "round_prefer_floor")
        if coord not in _RESIZE_COORD:
            out.append(f"coordinate_transformation_mode {coord!r} unsupported")
        if mode not in ("nearest", "linear"):
            out.append(f"mode {mode!r} unsupported (nearest or linear only)")
        if mode == "nearest" and nearest not in _RESIZE_NEAREST:
            out.append(f"nearest_mode {nearest!r} unsupported")
        if _attr(n, "antialias", 0):
            out.append("antialiasing is unsupported")
        if _attr(n, "keep_aspect_ratio_policy", "stretch") != "stretch":
            out.append("keep_aspect_ratio_policy must be 'stretch'")
    if op in _REDUCE and len(n.input) > 1 and n.input[1] and n.input[1] not in g.consts:
        out.append("axes must be an initializer")
    if op in ("Squeeze", "Unsqueeze", "CumSum", "OneHot"):
        i = {"CumSum": 1, "OneHot": 1}.get(op, 1)
        if len(n.input) > i and n.input[i] and n.input[i] not in g.consts:
            out.append(f"{'depth' if op == 'OneHot' else 'axes' if op != 'CumSum' else 'axis'} must be a build-time constant")
    if op == "TopK":
        if _attr(n, "sorted", 1) != 1:
            out.append("sorted must be 1")
        k = _const_values(g, n.input[1]) if len(n.input) > 1 else None
        if k is None:
            out.append("K must be an initializer")
        elif k and k[0] >= 3840:
            out.append(f"K must be less than 3840, found {k[0]}")
    if op == "LayerNormalization" and any(o and o in g.used for o in n.output[1:]):
        out.append("only the first output (Y) is supported")
    if op == "ScatterND" and _attr(n, "reduction", "none") != "none":
        out.append(f"reduction {_attr(n, 'reduction')!r} unsupported (none only)")
    if op == "Constant" and any(a.name in ("sparse_value", "value_string", "value_strings") for a in n.attribute):
        out.append("sparse_value / value_string(s) attributes are unsupported")
    if op == "Dropout" and len(n.input) > 2 and n.input[2]:
        v = _const_values(g, n.input[2])
        if v is None or any(v):
            out.append("is_training must be an initializer that is False")
    return out


def check_trt_support(source) -> list:
    """Problems that would stop TensorRT from parsing/building the graph: [] when ready.

    source: path of an .onnx file (external data is not read) or an onnx.ModelProto.
    """
    import onnx

    model = onnx.load(str(source), load_external_data=False) if isinstance(source, (str, Path)) else source
    table = load_table()
    supported, unsupported = table["supported"], set(table["unsupported"])
    lo, hi = table["opset_range"]
    problems = []
    for imp in model.opset_import:
        if imp.domain in ("", "ai.onnx") and not lo <= imp.version <= hi:
            problems.append(Problem("<model>", "opset", f"default-domain opset {imp.version} outside "
                                                         f"TensorRT's range [{lo}, {hi}]"))
    g = _Graph(model)
    qdq_values = set()
    for n in _all_nodes(model.graph):
        if n.op_type in _QDQ:
            qdq_values.update(n.input)
            qdq_values.update(n.output)

    for n in _all_nodes(model.graph):
        name, op = n.name or (n.output[0] if n.output else "?"), n.op_type
        if n.domain not in ("", "ai.onnx"):
            problems.append(Problem(name, op, f"custom domain {n.domain!r}: needs a TensorRT plugin"))
            continue
        if op not in supported:
            why = "not supported by the TensorRT ONNX parser" if op in unsupported else \
                "not in the TensorRT ONNX parser's operator table"
            problems.append(Problem(name, op, why))
            continue
        # the data input's dtype (other inputs are shapes/indices/axes with their own rules);
        # Cast is also checked on its output
        checked = [n.input[0]] if n.input and n.input[0] else []
        if op in ("Cast", "CastLike"):
            checked += list(n.output[:1])
        for v in checked:
            t = _TYPE_NAMES.get(g.types.get(v, 0))
            if t is not None and t not in supported[op] and not (t in _QUANTIZED and v in qdq_values):
                problems.append(Problem(name, op, f"dtype {t} of {v!r} unsupported (supported: "
                                                  f"{', '.join(supported[op])})"))
        problems += [Problem(name, op, r) for r in _restrictions(n, g)]

    for v, code in g.types.items():
        t = _TYPE_NAMES.get(code)
        if t == "DOUBLE":
            problems.append(Problem(v, "dtype", "DOUBLE tensor: TensorRT casts it down to FLOAT (clamped)"))
        elif t == "UINT8" and v not in g.io:
            problems.append(Problem(v, "dtype", "UINT8 is only supported as a network input or output"))
        elif t in _QUANTIZED and v not in qdq_values:
            problems.append(Problem(v, "dtype", f"{t} is only supported through Quantize/DequantizeLinear"))
        elif t in ("UINT16", "INT16", "UINT32", "UINT64", "STRING", "COMPLEX64", "COMPLEX128", "UINT4"):
            problems.append(Problem(v, "dtype", f"{t} is not a TensorRT data type"))
    return problems


def require_trt_ready(source, *, label: str | None = None) -> None:
    """Raise EngineMismatch naming every op of `source` that TensorRT 11 cannot parse/build."""
    from ..errors import EngineMismatch

    problems = check_trt_support(source)
    if problems:
        name = label or (str(source) if isinstance(source, (str, Path)) else "the graph")
        shown = "; ".join(str(p) for p in problems[:5])
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise EngineMismatch(f"{name} cannot be built by TensorRT 11: {shown}{more}. Re-export it "
                             "(uavrt export) or change the network so these ops fit the parser's table "
                             f"({load_table()['_source']['path']} of {load_table()['_source']['repo']})")
