"""`uavrt export --triton-repo`: each config.pbtxt parsed into Triton's own ModelConfig protobuf."""

from __future__ import annotations

import pytest

onnx = pytest.importorskip("onnx", reason="needs the onnx extra")
model_config_pb2 = pytest.importorskip("tritonclient.grpc.model_config_pb2",
                                       reason="needs tritonclient[grpc] (pip install -e '.[test]')")
from google.protobuf import text_format  # noqa: E402

from uavrt.errors import EngineMismatch, InputError, OutputExistsError  # noqa: E402
from uavrt.export.triton import write_triton_repo  # noqa: E402
from uavrt.spec import SPECS  # noqa: E402

ELEM = {"TYPE_FP32": onnx.TensorProto.FLOAT, "TYPE_FP16": onnx.TensorProto.FLOAT16,
        "TYPE_INT64": onnx.TensorProto.INT64}
TEXT_WIDTH = 32  # the U-Net's cross_attention_dim: fixed by the weights, read from the graph


def fake_export(folder, name, precision, *, break_type=None, external=False):
    """An ONNX file with exactly the I/O an export of `name` declares (names, element types,
    symbolic dims as the exporter writes them); the body is a stand-in: only the I/O is read."""
    spec = SPECS[name]

    def vi(t):
        if not t.is_float:
            elem = onnx.TensorProto.INT64
        elif precision == "fp16" and not t.keep_fp32:
            elem = onnx.TensorProto.FLOAT16
        else:
            elem = onnx.TensorProto.FLOAT
        if t.name == break_type:
            elem = onnx.TensorProto.DOUBLE
        dims = [TEXT_WIDTH if d == "C" else (d if isinstance(d, int) else str(d)) for d in t.dims]
        return onnx.helper.make_tensor_value_info(t.name, elem, dims)

    init = onnx.numpy_helper.from_array(__import__("numpy").zeros(300_000, "float32"), "w")
    nodes = [onnx.helper.make_node("Constant", [], [t.name], value_float=0.0) for t in spec.outputs]
    graph = onnx.helper.make_graph(nodes, name, [vi(t) for t in spec.inputs], [vi(t) for t in spec.outputs],
                                   initializer=[init])
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 21)])
    path = folder / f"{name}.{precision}.onnx"
    if external:
        onnx.save(model, str(path), save_as_external_data=True, location=path.name + ".data")
    else:
        onnx.save(model, str(path))
    return path


def parse(path) -> "model_config_pb2.ModelConfig":
    return text_format.Parse(path.read_text(), model_config_pb2.ModelConfig())


def test_onnx_repository_matches_the_specs(tmp_path):
    eng = tmp_path / "engines"
    eng.mkdir()
    for name in SPECS:
        fake_export(eng, name, "fp16", external=(name == "unet"))
    written = write_triton_repo(eng, tmp_path / "repo", precision="fp16")
    assert sorted(p.parent.name for p in written) == sorted(SPECS)
    for name, spec in SPECS.items():
        cfg = parse(tmp_path / "repo" / name / "config.pbtxt")
        assert cfg.name == name and cfg.platform == "onnxruntime_onnx" and cfg.max_batch_size == 0
        assert cfg.instance_group[0].kind == model_config_pb2.ModelInstanceGroup.KIND_GPU
        assert [i.name for i in cfg.input] == list(spec.input_names)
        assert [o.name for o in cfg.output] == list(spec.output_names)
        for t, got in zip(spec.inputs + spec.outputs, list(cfg.input) + list(cfg.output)):
            want_type = "TYPE_INT64" if not t.is_float else ("TYPE_FP32" if t.keep_fp32 else "TYPE_FP16")
            assert model_config_pb2.DataType.Name(got.data_type) == want_type, (name, t.name)
            if t.dims:
                want = [d if isinstance(d, int) else (TEXT_WIDTH if d == "C" else -1) for d in t.dims]
                assert list(got.dims) == want, (name, t.name)
            else:  # a scalar: [1] reshaped to rank 0
                assert list(got.dims) == [1] and got.HasField("reshape") and list(got.reshape.shape) == []
        model = tmp_path / "repo" / name / "1" / "model.onnx"
        assert model.read_bytes() == (eng / f"{name}.fp16.onnx").read_bytes()
    # spot checks written out by hand, independent of the loop's rules
    unet = parse(tmp_path / "repo" / "unet" / "config.pbtxt")
    by = {i.name: i for i in unet.input}
    assert list(by["sample"].dims) == [-1, 4, -1, -1, -1] and by["sample"].data_type == model_config_pb2.TYPE_FP16
    assert list(by["encoder_hidden_states"].dims) == [-1, -1, 32]
    assert by["timestep"].data_type == model_config_pb2.TYPE_INT64
    raft = parse(tmp_path / "repo" / "raft" / "config.pbtxt")
    assert [list(o.dims) for o in raft.output] == [[-1, 2, -1, -1], [-1, 2, -1, -1]]
    assert raft.input[0].data_type == model_config_pb2.TYPE_FP32  # RAFT stays fp32 in an fp16 export
    # the external data file sits beside model.onnx under the name the graph refers to
    data = tmp_path / "repo" / "unet" / "1" / "unet.fp16.onnx.data"
    assert data.read_bytes() == (eng / "unet.fp16.onnx.data").read_bytes()
    loaded = onnx.load(str(tmp_path / "repo" / "unet" / "1" / "model.onnx"))  # resolves the data file
    assert loaded.graph.initializer[0].dims == [300_000]


def test_plan_repository_and_refusals(tmp_path):
    eng = tmp_path / "engines"
    eng.mkdir()
    fake_export(eng, "vae_3d", "fp16")
    (eng / "vae_3d.fp16.plan").write_bytes(b"serialized engine")
    [cfg_path] = write_triton_repo(eng, tmp_path / "repo", networks=["vae_3d"], kind="plan")
    cfg = parse(cfg_path)
    assert cfg.platform == "tensorrt_plan"
    assert (tmp_path / "repo" / "vae_3d" / "1" / "model.plan").read_bytes() == b"serialized engine"
    with pytest.raises(OutputExistsError):  # never overwritten unless asked
        write_triton_repo(eng, tmp_path / "repo", networks=["vae_3d"], kind="plan")
    write_triton_repo(eng, tmp_path / "repo", networks=["vae_3d"], kind="plan", overwrite=True)
    with pytest.raises(InputError, match="raft.fp16.plan"):
        write_triton_repo(eng, tmp_path / "repo2", networks=["raft"], kind="plan")
    fake_export(eng, "raft", "fp16", break_type="image1")
    with pytest.raises(EngineMismatch, match="image1"):  # a graph whose types disagree with the spec
        write_triton_repo(eng, tmp_path / "repo3", networks=["raft"])
    assert not (tmp_path / "repo3" / "raft" / "config.pbtxt").exists()


def test_export_command_has_the_flag():
    from uavrt.commands import build_parser
    a = build_parser().parse_args(["export", "--demo", "--out", "E", "--triton-repo", "R"])
    assert a.triton_repo == "R"
