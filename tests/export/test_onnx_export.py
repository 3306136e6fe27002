"""ONNX export machinery on a toy network with the real networks' op kinds (fast)."""

from __future__ import annotations

import json

import onnx
import pytest
import torch
from onnx import TensorProto, helper
from toy_net import TOY, ToyNet, toy_net

from uavrt.errors import ConfigError, OutputExistsError
from uavrt.export.metadata import read_metadata, weights_sha256
from uavrt.export.onnx_export import export_networks, export_onnx
from uavrt.export.onnx_graph import ExportError, data_path
from uavrt.spec import NetworkSpec, f32
from uavrt.export.trt_ops import check_trt_support

ort = pytest.importorskip("onnxruntime")


def run_ort(path, inputs: dict) -> dict:
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    types = {i.name: i.type for i in sess.get_inputs()}
    feeds = {k: (v.half() if types[k] == "tensor(float16)" else v).numpy() for k, v in inputs.items()}
    return {o.name: torch.from_numpy(y).float() for o, y in zip(sess.get_outputs(), sess.run(None, feeds))}


@pytest.fixture(scope="module")
def toy():
    return toy_net()


@pytest.fixture(scope="module")
def exported(toy, tmp_path_factory):
    out = tmp_path_factory.mktemp("toy")
    return {p: export_onnx(toy, TOY, out / f"toy.{p}.onnx", precision=p, weights_hash="abc123",
                           config={"channels": 32, "_note": "x"}) for p in ("fp32", "fp16")}


@pytest.mark.parametrize("dims", [{"B": 2, "T": 3, "H": 8, "W": 12}, {"B": 1, "T": 5, "H": 6, "W": 4}])
def test_fp32_graph_matches_torch_at_two_shapes(toy, exported, dims):
    x = TOY.sample_inputs(dims, seed=3)
    with torch.no_grad():
        ref = toy(**x)
    got = run_ort(exported["fp32"], x)["out"]
    assert got.shape == ref.shape
    # fp32 vs fp32 (different kernels / reduction orders): relative to max|ref|
    assert (got - ref).abs().max() <= 1e-4 * ref.abs().max()


@pytest.mark.parametrize("dims", [{"B": 2, "T": 3, "H": 8, "W": 12}, {"B": 1, "T": 2, "H": 4, "W": 6}])
def test_fp16_graph_close_to_fp32_torch(toy, exported, dims):
    x = TOY.sample_inputs(dims, seed=4)
    with torch.no_grad():
        ref = toy(**x)
    got = run_ort(exported["fp16"], x)["out"]
    # fp16 weights/activations (10-bit mantissa, ~5e-4 per rounding) through ~10 layers
    assert (got - ref).abs().max() <= 1e-2 * ref.abs().max()


def test_fp16_graph_types_and_fp32_islands(exported):
    m = onnx.load(str(exported["fp16"]))
    io = {v.name: v.type.tensor_type.elem_type for v in list(m.graph.input) + list(m.graph.output)}
    # spec: sample/out follow the precision, scale keeps fp32, timestep int64
    assert io == {"sample": TensorProto.FLOAT16, "timestep": TensorProto.INT64, "scale": TensorProto.FLOAT,
                  "out": TensorProto.FLOAT16}
    conv_w = {i.name: i.data_type for i in m.graph.initializer if i.name.endswith("conv_in.weight")}
    assert list(conv_w.values()) == [TensorProto.FLOAT16]
    m = onnx.shape_inference.infer_shapes(m)
    types = {v.name: v.type.tensor_type.elem_type for v in m.graph.value_info}
    types.update({i.name: i.data_type for i in m.graph.initializer})
    kept = [n for n in m.graph.node if n.op_type in ("Softmax", "GroupNormalization", "LayerNormalization")]
    assert sorted(n.op_type for n in kept) == ["GroupNormalization", "LayerNormalization", "Softmax"]
    for n in kept:  # statistics / exp computed in fp32 (with fp32 scale and bias)
        assert {types[i] for i in n.input} == {TensorProto.FLOAT}, n.name


def test_graph_dims_named_and_checker_passes(exported):
    for path in exported.values():
        onnx.checker.check_model(str(path), full_check=True)
        m = onnx.load(str(path))
        dims = [d.dim_param or d.dim_value for d in m.graph.input[0].type.tensor_type.shape.dim]
        assert dims == ["B", 4, "T", "H", "W"]
        out = [d.dim_param or d.dim_value for d in m.graph.output[0].type.tensor_type.shape.dim]
        assert out == ["B", 4, "T", "2*H", "2*W"]


def test_metadata(toy, exported):
    meta = read_metadata(exported["fp16"])
    assert meta["network"] == "toy" and meta["precision"] == "fp16" and meta["opset"] == "21"
    assert meta["weights_sha256"] == "abc123"
    assert json.loads(meta["config"]) == {"channels": 32, "_note": "x"}
    assert json.loads(meta["spec"])["inputs"][0] == {"name": "sample", "dtype": "float32",
                                                      "dims": ["B", 4, "T", "H", "W"], "keep_fp32": False}
    assert meta["exporter"] == f"torch {torch.__version__}"
    assert json.loads(meta["fp16_policy"])["fp32_onnx_ops"] == ["Softmax"]
    assert "fp16_policy" not in read_metadata(exported["fp32"])


def test_weights_hash_is_canonical(toy):
    sd = toy.state_dict()
    assert weights_sha256(dict(reversed(list(sd.items())))) == weights_sha256(sd)
    sd2 = {k: v.clone() for k, v in sd.items()}
    sd2["proj.bias"][0] += 1e-3
    assert weights_sha256(sd2) != weights_sha256(sd)


def test_trt_check_passes_on_exported_graphs(exported):
    for path in exported.values():
        assert check_trt_support(path) == []


def test_refuses_to_overwrite(toy, exported):
    before = exported["fp32"].read_bytes()
    with pytest.raises(OutputExistsError):
        export_onnx(toy, TOY, exported["fp32"], precision="fp32")
    assert exported["fp32"].read_bytes() == before


def test_export_networks_checks_names_before_work(tmp_path):
    with pytest.raises(ConfigError, match="'unet', 'vae_3d', 'vae_video', 'raft'"):
        export_networks({"unet3": (ToyNet(), "h", {})}, tmp_path)
    with pytest.raises(ConfigError, match="precision"):
        export_networks({"vae_3d": (ToyNet(), "h", {})}, tmp_path, precisions=("fp8",))
    (tmp_path / "vae_3d.fp32.onnx").write_bytes(b"old")
    with pytest.raises(OutputExistsError):  # before any export starts (the toy would fail on it)
        export_networks({"vae_3d": (ToyNet(), "h", {})}, tmp_path, precisions=("fp16", "fp32"))
    assert (tmp_path / "vae_3d.fp32.onnx").read_bytes() == b"old"
    assert not (tmp_path / "vae_3d.fp16.onnx").exists()


def test_external_data_single_file_and_overwrite(toy, tmp_path):
    path = tmp_path / "toy.fp32.onnx"
    export_onnx(toy, TOY, path, external_data=True)
    assert data_path(path).is_file() and path.stat().st_size < 200_000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["toy.fp32.onnx", "toy.fp32.onnx.data"]
    x = TOY.sample_inputs({"B": 1, "T": 2, "H": 4, "W": 4})
    with torch.no_grad():
        ref = toy(**x)
    assert (run_ort(path, x)["out"] - ref).abs().max() <= 1e-4 * ref.abs().max()
    # overwriting with an inline graph removes the stale data file
    export_onnx(toy, TOY, path, external_data=False, overwrite=True)
    assert not data_path(path).exists()
    assert (run_ort(path, x)["out"] - ref).abs().max() <= 1e-4 * ref.abs().max()


class _Specialises(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(4, 4, 1)

    def forward(self, x):
        # a value computed from H in Python (linspace size) makes H static under export
        grid = torch.linspace(-1, 1, x.shape[2])
        return self.conv(x) * grid.reshape(1, 1, -1, 1)


def test_specialised_dim_is_an_error(tmp_path):
    spec = NetworkSpec("spec_toy", inputs=(f32("x", "N", 4, "H", "W"),), outputs=(f32("y", "N", 4, "H", "W"),),
                       example={"N": 2, "H": 6, "W": 5})
    with pytest.raises(ExportError, match="torch.export failed.*H"):
        export_onnx(_Specialises().eval(), spec, tmp_path / "s.onnx")
    assert list(tmp_path.iterdir()) == []


def _graph_with(node, inputs, outputs, inits=()):
    g = helper.make_graph([node], "g", inputs, outputs, initializer=list(inits))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 21)])


def test_trt_check_names_unsupported_ops(tmp_path):
    fl = TensorProto.FLOAT
    m = _graph_with(helper.make_node("Det", ["x"], ["y"], name="det0"),
                    [helper.make_tensor_value_info("x", fl, [3, 3])], [helper.make_tensor_value_info("y", fl, [])])
    onnx.save(m, str(tmp_path / "det.onnx"))
    probs = check_trt_support(tmp_path / "det.onnx")
    assert [(p.node, p.op_type) for p in probs] == [("det0", "Det")]
    assert "not supported" in str(probs[0])
    # GridSample on a 5-D input (volumetric): TensorRT supports 4-D only
    m = _graph_with(helper.make_node("GridSample", ["x", "g"], ["y"], name="gs5"),
                    [helper.make_tensor_value_info("x", fl, [1, 2, 3, 4, 5]),
                     helper.make_tensor_value_info("g", fl, [1, 3, 4, 5, 3])],
                    [helper.make_tensor_value_info("y", fl, [1, 2, 3, 4, 5])])
    probs = check_trt_support(m)
    assert len(probs) == 1 and probs[0].op_type == "GridSample" and "4-D" in probs[0].reason
    # cubic Resize and a float64 tensor
    d = TensorProto.DOUBLE
    m = _graph_with(helper.make_node("Resize", ["x", "", "s"], ["y"], name="rs", mode="cubic"),
                    [helper.make_tensor_value_info("x", d, [1, 1, 4, 4])],
                    [helper.make_tensor_value_info("y", d, [1, 1, 8, 8])],
                    [helper.make_tensor("s", fl, [4], [1, 1, 2, 2])])
    reasons = [str(p) for p in check_trt_support(m)]
    assert any("mode 'cubic'" in r for r in reasons)
    assert any("dtype DOUBLE" in r for r in reasons)


def test_integer_clip_becomes_max_min():
    import numpy as np

    from uavrt.export.onnx_graph import rewrite_integer_clip

    i64 = TensorProto.INT64
    m = _graph_with(helper.make_node("Clip", ["x", "lo", "hi"], ["y"], name="clip"),
                    [helper.make_tensor_value_info("x", i64, [5])], [helper.make_tensor_value_info("y", i64, [5])],
                    [helper.make_tensor("lo", i64, [], [2]), helper.make_tensor("hi", i64, [], [6])])
    assert [p.op_type for p in check_trt_support(m)] == ["Clip"]
    assert rewrite_integer_clip(m) == 1
    assert [n.op_type for n in m.graph.node] == ["Max", "Min"] and check_trt_support(m) == []
    x = np.array([-3, 2, 4, 6, 9], dtype=np.int64)
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    assert sess.run(None, {"x": x})[0].tolist() == [2, 2, 4, 6, 6]
