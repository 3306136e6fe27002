"""Engine build: refusals on CPU, cache orchestration with the TensorRT build call stubbed out,
and a real tiny build where TensorRT + a GPU exist."""

import json
import sys
import types

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from uavrt.errors import BackendUnavailable, ConfigError, EngineMismatch, OutputExistsError, WeightsError
from uavrt.export import cache, trt
from uavrt.export.profiles import ProfilePlan

PLAN = ProfilePlan(raft_pairs=2, raft_min=(128, 128), raft_opt=(128, 128), raft_max=(256, 256))


def tiny_raft_onnx(path, metadata=None, seed=0):
    """A RAFT-shaped stand-in: flow_up = conv3x3(image1 - image2), flow_low = avgpool8(flow_up)."""
    rng = np.random.default_rng(seed)
    i1 = helper.make_tensor_value_info("image1", TensorProto.FLOAT, ["N", 3, "H", "W"])
    i2 = helper.make_tensor_value_info("image2", TensorProto.FLOAT, ["N", 3, "H", "W"])
    low = helper.make_tensor_value_info("flow_low", TensorProto.FLOAT, ["N", 2, "H8", "W8"])
    up = helper.make_tensor_value_info("flow_up", TensorProto.FLOAT, ["N", 2, "H", "W"])
    w = numpy_helper.from_array(rng.standard_normal((2, 3, 3, 3)).astype(np.float32), "w")
    nodes = [helper.make_node("Sub", ["image1", "image2"], ["d"]),
             helper.make_node("Conv", ["d", "w"], ["flow_up"], pads=[1, 1, 1, 1]),
             helper.make_node("AveragePool", ["flow_up"], ["flow_low"], kernel_shape=[8, 8], strides=[8, 8])]
    g = helper.make_graph(nodes, "tiny_raft", [i1, i2], [low, up], [w])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 21)])
    for k, v in {"uavrt.network": "raft", "uavrt.precision": "fp16", **(metadata or {})}.items():
        m.metadata_props.add(key=k, value=v)
    onnx.checker.check_model(m, full_check=True)
    onnx.save_model(m, str(path))
    return path


def test_no_tensorrt_fails_at_once(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # `import tensorrt` raises ImportError
    out = tmp_path / "engines"
    with pytest.raises(BackendUnavailable, match=r"pip install tensorrt.*GPU"):
        trt.build_engines(tmp_path / "missing", out, plan=PLAN)
    assert not out.exists()  # failed before any work


def test_hardware_levels():
    assert trt.hardware_level(False) == trt.hardware_level("none") == "none"
    assert trt.hardware_level(True) == "ampere_plus"
    assert trt.hardware_level("same_compute_capability") == "same_compute_capability"
    with pytest.raises(ConfigError, match="hardware_compatible"):
        trt.hardware_level("turing_plus")


def test_network_selection(tmp_path):
    with pytest.raises(WeightsError, match="run `uavrt export` first"):
        trt._select_networks(tmp_path, None, "fp16")
    tiny_raft_onnx(tmp_path / "raft.fp16.onnx")
    assert trt._select_networks(tmp_path, None, "fp16") == ["raft"]
    with pytest.raises(WeightsError, match="unet.fp16.onnx"):
        trt._select_networks(tmp_path, ["raft", "unet"], "fp16")
    with pytest.raises(ConfigError, match="network"):
        trt._select_networks(tmp_path, ["flownet"], "fp16")


def test_config_is_read_from_the_graph_metadata():
    assert trt._onnx_config({"uavrt.config": '{"cross_attention_dim": 32}'}) == {"cross_attention_dim": 32}
    assert trt._onnx_config({"uavrt.config": "not json"}) is None
    assert trt._onnx_config({}) is None


def test_onnx_metadata_must_match_file_name(tmp_path):
    with pytest.raises(EngineMismatch, match="precision='fp32'"):
        trt._check_onnx_metadata(tmp_path / "raft.fp16.onnx", {"uavrt.precision": "fp32"}, "raft", "fp16")
    trt._check_onnx_metadata(tmp_path / "raft.fp16.onnx", {"precision": "fp16", "network": "raft"}, "raft", "fp16")


# --- the cache orchestration of build_engines, with TensorRT's build call replaced -----------------
@pytest.fixture
def stub_build(monkeypatch):
    """Everything but the TensorRT build: a fake `tensorrt` module, GPU identity and serialized plan."""
    calls = []
    monkeypatch.setitem(sys.modules, "tensorrt", types.SimpleNamespace(__version__="11.0.0.1"))
    monkeypatch.setattr(trt, "gpu_identity", lambda device=None: ("Fake GPU", "9.0"))

    def build(_trt, onnx_path, profiles, **options):
        calls.append((onnx_path.name, profiles, options))
        return b"PLAN" + onnx_path.read_bytes()[:16] + json.dumps(options, default=str).encode()

    monkeypatch.setattr(trt, "_build_serialized", build)
    return calls


def test_build_reuse_stale_and_overwrite(tmp_path, stub_build):
    onnx_dir, out = tmp_path / "onnx", tmp_path / "engines"
    onnx_dir.mkdir()
    tiny_raft_onnx(onnx_dir / "raft.fp16.onnx")
    msgs = []
    [entry] = trt.build_engines(onnx_dir, out, plan=PLAN, progress=msgs.append)
    assert len(stub_build) == 1 and "built" in msgs[-1]
    assert entry["fields"]["profiles"]["image1"] == [[1, 3, 128, 128], [2, 3, 128, 128], [2, 3, 256, 256]]
    assert entry["fields"]["gpu_name"] == "Fake GPU" and entry["onnx_metadata"]["uavrt.network"] == "raft"
    plan_file = out / "raft.fp16.plan"
    assert entry["sha256"] == cache.sha256_file(plan_file)

    # same inputs: reused, not rebuilt
    [again] = trt.build_engines(onnx_dir, out, plan=PLAN, progress=msgs.append)
    assert len(stub_build) == 1 and again == entry and "up to date" in msgs[-1]

    # any change (here the profile plan, then the build options) -> stale: refused without overwrite
    wider = ProfilePlan(raft_pairs=4, raft_min=(128, 128), raft_opt=(128, 128), raft_max=(256, 256))
    with pytest.raises(EngineMismatch, match="stale.*profiles"):
        trt.build_engines(onnx_dir, out, plan=wider)
    with pytest.raises(EngineMismatch, match="optimization_level"):
        trt.build_engines(onnx_dir, out, plan=PLAN, optimization_level=5)
    assert len(stub_build) == 1

    [rebuilt] = trt.build_engines(onnx_dir, out, plan=wider, overwrite=True)
    assert len(stub_build) == 2 and rebuilt["key"] != entry["key"]
    assert cache.load_manifest(out)["engines"]["raft.fp16"] == rebuilt

    # new weights in the ONNX -> stale as well
    tiny_raft_onnx(onnx_dir / "raft.fp16.onnx", seed=1)
    with pytest.raises(EngineMismatch, match="onnx_sha256"):
        trt.build_engines(onnx_dir, out, plan=wider)


def test_plan_without_manifest_entry_is_not_clobbered(tmp_path, stub_build):
    onnx_dir, out = tmp_path / "onnx", tmp_path / "engines"
    onnx_dir.mkdir(), out.mkdir()
    tiny_raft_onnx(onnx_dir / "raft.fp16.onnx")
    (out / "raft.fp16.plan").write_bytes(b"someone else's engine")
    with pytest.raises(OutputExistsError):
        trt.build_engines(onnx_dir, out, plan=PLAN)
    assert not stub_build
    trt.build_engines(onnx_dir, out, plan=PLAN, overwrite=True)
    assert len(stub_build) == 1


def test_build_options_reach_the_builder(tmp_path, stub_build):
    onnx_dir = tmp_path / "onnx"
    onnx_dir.mkdir()
    tiny_raft_onnx(onnx_dir / "raft.fp16.onnx")
    [e] = trt.build_engines(onnx_dir, tmp_path / "e", plan=PLAN, optimization_level=1, version_compatible=True,
                            hardware_compatible=True, workspace_gb=2, timing_cache=tmp_path / "t.cache")
    _, profiles, opts = stub_build[0]
    assert opts == dict(optimization_level=1, timing_cache=tmp_path / "t.cache", version_compatible=True,
                        hw_level="ampere_plus", workspace_gb=2)
    f = e["fields"]
    assert (f["optimization_level"], f["version_compatible"], f["hardware_compatibility"],
            f["workspace_bytes"]) == (1, True, "ampere_plus", 2 << 30)


@pytest.mark.parametrize("kw, param", [(dict(optimization_level=6), "optimization_level"),
                                       (dict(workspace_gb=0), "workspace_gb"),
                                       (dict(precision="int8"), "precision"),
                                       (dict(plan={"clip_frames": 8}), "plan")])
def test_bad_options(tmp_path, stub_build, kw, param):
    with pytest.raises(ConfigError) as e:
        trt.build_engines(tmp_path, tmp_path / "e", **{"plan": PLAN, **kw})
    assert e.value.param == param


# --- real TensorRT ---------------------------------------------------------------------------
@pytest.mark.trt
@pytest.mark.gpu
def test_real_build_and_reuse(tmp_path):
    onnx_dir, out = tmp_path / "onnx", tmp_path / "engines"
    onnx_dir.mkdir()
    tiny_raft_onnx(onnx_dir / "raft.fp16.onnx")
    timing = tmp_path / "timing.cache"
    [e] = trt.build_engines(onnx_dir, out, plan=PLAN, optimization_level=0, timing_cache=timing)
    assert (out / e["file"]).stat().st_size > 0 and timing.exists()
    import tensorrt

    engine = tensorrt.Runtime(tensorrt.Logger(tensorrt.Logger.WARNING)).deserialize_cuda_engine(
        (out / e["file"]).read_bytes())
    assert [tuple(s) for s in engine.get_tensor_profile_shape("image1", 0)] == [
        (1, 3, 128, 128), (2, 3, 128, 128), (2, 3, 256, 256)]
    assert e["fields"]["tensorrt_version"] == tensorrt.__version__
    [again] = trt.build_engines(onnx_dir, out, plan=PLAN, optimization_level=0, timing_cache=timing)
    assert again == e


def _unparseable_raft(path):
    """A RAFT-named graph with an op TensorRT 11's ONNX parser lacks (a custom-domain node)."""
    v = helper.make_tensor_value_info
    ins = [v("image1", TensorProto.FLOAT, ["N", 3, "H", "W"]), v("image2", TensorProto.FLOAT, ["N", 3, "H", "W"])]
    outs = [v("flow_low", TensorProto.FLOAT, None), v("flow_up", TensorProto.FLOAT, None)]
    nodes = [helper.make_node("Sub", ["image1", "image2"], ["flow_up"]),
             helper.make_node("CorrLookup", ["flow_up"], ["flow_low"], name="corr", domain="raft.ops")]
    m = helper.make_model(helper.make_graph(nodes, "bad", ins, outs),
                          opset_imports=[helper.make_opsetid("", 21), helper.make_opsetid("raft.ops", 1)])
    for k, val in {"uavrt.network": "raft", "uavrt.precision": "fp16"}.items():
        m.metadata_props.add(key=k, value=val)
    onnx.save_model(m, str(path))


def test_graph_tensorrt_cannot_parse_is_refused_before_any_build(tmp_path, stub_build):
    onnx_dir, out = tmp_path / "onnx", tmp_path / "engines"
    onnx_dir.mkdir()
    _unparseable_raft(onnx_dir / "raft.fp16.onnx")
    with pytest.raises(EngineMismatch, match=r"raft\.fp16\.onnx cannot be built by TensorRT 11: "
                                             r"CorrLookup node 'corr': custom domain 'raft.ops'"):
        trt.build_engines(onnx_dir, out, plan=PLAN)
    assert not stub_build and not out.exists()


def test_every_graph_is_checked_before_the_first_build(tmp_path, stub_build, monkeypatch):
    # unet (first in build order) is fine, raft is not: nothing may be built
    onnx_dir = tmp_path / "onnx"
    onnx_dir.mkdir()
    _unparseable_raft(onnx_dir / "raft.fp16.onnx")
    tiny_raft_onnx(onnx_dir / "unet.fp16.onnx", metadata={"uavrt.network": "unet"})
    monkeypatch.setattr(trt, "derive_profiles", lambda spec, plan, config=None: {})
    with pytest.raises(EngineMismatch, match="CorrLookup"):
        trt.build_engines(onnx_dir, tmp_path / "e", plan=PLAN, networks=["unet", "raft"])
    assert not stub_build
