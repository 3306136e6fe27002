"""The TensorRT 11 updates of the ONNX parser's operator table (export/trt_ops_table.json)."""

import pytest
from onnx import TensorProto, helper

from uavrt.errors import EngineMismatch
from uavrt.export.trt_ops import check_trt_support, load_table, require_trt_ready


def _model(op, opset, **attrs):
    v = helper.make_tensor_value_info
    g = helper.make_graph([helper.make_node(op, ["x"], ["y"], name="n", **attrs)], "g",
                          [v("x", TensorProto.FLOAT16, [1, 4])], [v("y", TensorProto.FLOAT16, [1, 4])])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


def test_table_names_its_sources():
    src = load_table()["_source"]
    assert src["repo"] == "onnx/onnx-tensorrt" and "10.15" in src["version"]
    assert any("opset 25" in u for u in src["tensorrt_11_updates"])


@pytest.mark.parametrize("opset, ok", [(9, True), (21, True), (25, True), (26, False), (8, False)])
def test_opset_range_is_tensorrt_11s(opset, ok):
    problems = check_trt_support(_model("Relu", opset))
    assert (problems == []) == ok, problems
    if not ok:
        assert "outside TensorRT's range [9, 25]" in str(problems[0])


def test_swish_is_supported_since_tensorrt_11():
    assert check_trt_support(_model("Swish", 24, alpha=1.0)) == []


def test_require_trt_ready_names_the_op():
    with pytest.raises(EngineMismatch, match=r"g\.onnx cannot be built by TensorRT 11: Relu node 'n': dtype DOUBLE"):
        v = helper.make_tensor_value_info
        g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"], name="n")], "g",
                              [v("x", TensorProto.DOUBLE, [1])], [v("y", TensorProto.DOUBLE, [1])])
        require_trt_ready(helper.make_model(g, opset_imports=[helper.make_opsetid("", 21)]), label="g.onnx")
    require_trt_ready(_model("Relu", 21))  # ready: no error
