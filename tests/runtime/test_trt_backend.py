"""TensorRT backend: every refusal on CPU from manifest data; real engines where TensorRT + GPU exist."""

import json
import sys
import types

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from uavrt.errors import BackendUnavailable, EngineMismatch, InputError
from uavrt.export import cache
from uavrt.export.profiles import ProfilePlan
from uavrt.runtime.trt_backend import (EngineEnv, SharedActivationMemory, TrtBackend, check_engine_compatible,
                                       check_expected, check_input_shapes, resolve_engine)

H100 = EngineEnv("11.0.0.5", "NVIDIA H100 80GB HBM3", "9.0")


def _entry(**fields):
    f = dict(tensorrt_version="11.0.0.5", gpu_name="NVIDIA H100 80GB HBM3", compute_capability="9.0",
             version_compatible=False, hardware_compatibility="none", precision="fp16",
             profiles={"image1": [[1, 3, 128, 128], [8, 3, 256, 256], [8, 3, 512, 512]]})
    f.update(fields)
    return {"fields": f, "onnx_metadata": {"uavrt.weights_sha256": "aa11", "uavrt.precision": "fp16"}}


# --- refusals from manifest data (CPU) ---------------------------------------------------------
def test_same_tensorrt_and_gpu_is_accepted():
    check_engine_compatible("raft.fp16", _entry(), H100)


def test_other_tensorrt_version_is_refused():
    with pytest.raises(EngineMismatch, match=r"built with TensorRT 11\.0\.0\.5.*this is TensorRT 11\.1\.0\.2"):
        check_engine_compatible("raft.fp16", _entry(), EngineEnv("11.1.0.2", H100.gpu_name, "9.0"))


@pytest.mark.parametrize("runtime, ok", [("11.0.0.5", True), ("11.2.1.0", True), ("11.0.0.4", False),
                                         ("12.0.0.1", False), ("10.9.0.0", False)])
def test_version_compatible_engines(runtime, ok):
    env = EngineEnv(runtime, H100.gpu_name, "9.0")
    if ok:
        check_engine_compatible("raft.fp16", _entry(version_compatible=True), env)
    else:
        with pytest.raises(EngineMismatch, match="version-compatible"):
            check_engine_compatible("raft.fp16", _entry(version_compatible=True), env)


def test_other_gpu_is_refused():
    with pytest.raises(EngineMismatch, match=r"built on NVIDIA H100 80GB HBM3 \(compute capability 9\.0\).*"
                                             r"this GPU is NVIDIA H200 \(compute capability 9\.0\)"):
        check_engine_compatible("raft.fp16", _entry(), EngineEnv("11.0.0.5", "NVIDIA H200", "9.0"))


@pytest.mark.parametrize("level, gpu, cc, ok", [
    ("ampere_plus", "NVIDIA A10", "8.6", True), ("ampere_plus", "Tesla T4", "7.5", False),
    ("same_compute_capability", "NVIDIA H200", "9.0", True),
    ("same_compute_capability", "NVIDIA L40S", "8.9", False)])
def test_hardware_compatible_engines(level, gpu, cc, ok):
    env = EngineEnv("11.0.0.5", gpu, cc)
    if ok:
        check_engine_compatible("unet.fp16", _entry(hardware_compatibility=level), env)
    else:
        with pytest.raises(EngineMismatch, match=f"this GPU is {gpu}"):
            check_engine_compatible("unet.fp16", _entry(hardware_compatibility=level), env)


def test_shape_outside_profile_names_input_shape_and_range():
    profiles = _entry()["fields"]["profiles"]
    check_input_shapes("raft", profiles, {"image1": (8, 3, 512, 256)})
    with pytest.raises(InputError, match=r"raft\.image1: shape \(2, 3, 520, 256\) is outside.*"
                                         r"min \(1, 3, 128, 128\), max \(8, 3, 512, 512\)"):
        check_input_shapes("raft", profiles, {"image1": (2, 3, 520, 256)})
    with pytest.raises(InputError, match="outside"):
        check_input_shapes("raft", profiles, {"image1": (9, 3, 256, 256)})
    with pytest.raises(InputError, match="outside"):
        check_input_shapes("raft", profiles, {"image1": (3, 256, 256)})


def test_expected_metadata():
    check_expected("unet.fp16", _entry(), {"weights_sha256": "aa11", "precision": "fp16"})
    check_expected("unet.fp16", _entry(), {"weights_hash": "aa11"})  # the alias the ORT backend accepts
    check_expected("unet.fp16", _entry(), None)
    with pytest.raises(EngineMismatch, match=r"engine unet\.fp16.*weights_sha256 mismatch: "
                                             r"expected 'bb22', found 'aa11'"):
        check_expected("unet.fp16", _entry(), {"weights_sha256": "bb22"})
    with pytest.raises(EngineMismatch, match="no uavrt metadata field 'config'"):
        check_expected("unet.fp16", _entry(), {"config": {"cross_attention_dim": 32}})


def _write_engine(d, plan_bytes=b"serialized-engine", **fields):
    fields = {**_entry(**fields)["fields"], "network": "raft"}
    plan = d / cache.plan_filename("raft", "fp16")
    plan.write_bytes(plan_bytes)
    cache.write_entry(d, "raft.fp16", cache.make_entry(fields, plan, build_seconds=1.0, onnx_file="raft.fp16.onnx",
                                                       onnx_metadata=_entry()["onnx_metadata"], built_at="t"))
    return plan


def test_resolve_engine(tmp_path):
    with pytest.raises(EngineMismatch, match=r"no engine raft\.fp16.*uavrt export --trt"):
        resolve_engine(tmp_path, "raft", "fp16", H100)
    plan = _write_engine(tmp_path)
    entry, path = resolve_engine(tmp_path, "raft", "fp16", H100, expect={"precision": "fp16"})
    assert path == plan and entry["fields"]["network"] == "raft"
    plan.write_bytes(b"serialized-enginf")  # same size, other bytes
    with pytest.raises(EngineMismatch, match="modified or replaced"):
        resolve_engine(tmp_path, "raft", "fp16", H100)
    plan.unlink()
    with pytest.raises(EngineMismatch, match="plan file .* is missing"):
        resolve_engine(tmp_path, "raft", "fp16", H100)


def test_incompatibility_is_found_before_the_plan_is_read(tmp_path):
    plan = _write_engine(tmp_path)
    plan.unlink()  # the plan is not even needed to refuse an engine built for another GPU
    with pytest.raises(EngineMismatch, match="this GPU is NVIDIA A100"):
        resolve_engine(tmp_path, "raft", "fp16", EngineEnv("11.0.0.5", "NVIDIA A100", "8.0"))


def test_no_tensorrt_fails_at_once(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    with pytest.raises(BackendUnavailable, match=r"pip install tensorrt \(TensorRT 11.*GPU"):
        TrtBackend(tmp_path)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU refusal; this machine has a GPU")
def test_no_gpu_fails_at_once(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "tensorrt", types.SimpleNamespace(__version__="11.0.0.5"))
    with pytest.raises(BackendUnavailable, match="needs an NVIDIA GPU"):
        TrtBackend(tmp_path)


class _Ctx:
    def __init__(self):
        self.memory = None

    def set_device_memory(self, ptr, size):
        self.memory = (ptr, size)


def test_shared_activation_memory_is_one_buffer_of_the_largest_need():
    mem = SharedActivationMemory(torch.device("cpu"))
    a, b, c = _Ctx(), _Ctx(), _Ctx()
    mem.attach(a, 1000)
    assert mem.nbytes == 1000 and mem.generation == 1
    mem.attach(b, 300)  # fits: no new buffer
    assert mem.generation == 1 and b.memory == a.memory == (mem.buffer.data_ptr(), 1000)
    mem.attach(c, 5000)  # grows: everyone re-pointed at the new buffer
    assert mem.generation == 2 and mem.nbytes == 5000
    assert a.memory == b.memory == c.memory == (mem.buffer.data_ptr(), 5000)


# --- tiny graphs shaped like the real networks' I/O ----------------------------------------------
def tiny_raft_onnx(path):
    """flow_up = conv3x3(image1 - image2), flow_low = avgpool8(flow_up); fp32 like the real RAFT."""
    rng = np.random.default_rng(0)
    v = helper.make_tensor_value_info
    ins = [v("image1", TensorProto.FLOAT, ["N", 3, "H", "W"]), v("image2", TensorProto.FLOAT, ["N", 3, "H", "W"])]
    outs = [v("flow_low", TensorProto.FLOAT, ["N", 2, "H8", "W8"]), v("flow_up", TensorProto.FLOAT, ["N", 2, "H", "W"])]
    w = numpy_helper.from_array(rng.standard_normal((2, 3, 3, 3)).astype(np.float32), "w")
    n = helper.make_node
    nodes = [n("Sub", ["image1", "image2"], ["d"]), n("Conv", ["d", "w"], ["flow_up"], pads=[1, 1, 1, 1]),
             n("AveragePool", ["flow_up"], ["flow_low"], kernel_shape=[8, 8], strides=[8, 8])]
    _save(helper.make_graph(nodes, "tiny_raft", ins, outs, [w]), path)


def tiny_unet_onnx(path):
    """FP16 graph with the U-Net's I/O (int64 scalar timestep and labels):
    noise_pred = sample*t/1000 + mean_c(low_res) + mean(ehs) + labels/1000."""
    F, v, n = TensorProto.FLOAT16, helper.make_tensor_value_info, helper.make_node
    ins = [v("sample", F, ["B", 4, "T", "H", "W"]), v("timestep", TensorProto.INT64, []),
           v("low_res", F, ["B", 3, "T", "H", "W"]), v("encoder_hidden_states", F, ["B", "L", "C"]),
           v("class_labels", TensorProto.INT64, ["B"])]
    consts = [numpy_helper.from_array(np.array(1e-3, np.float16), "k"),
              numpy_helper.from_array(np.array([1], np.int64), "ax1"),
              numpy_helper.from_array(np.array([1, 2], np.int64), "ax12"),
              numpy_helper.from_array(np.array([1, 2, 3, 4], np.int64), "ax1234")]
    nodes = [n("Cast", ["timestep"], ["t16"], to=F), n("Mul", ["t16", "k"], ["ts"]), n("Mul", ["sample", "ts"], ["a"]),
             n("ReduceMean", ["low_res", "ax1"], ["lr"], keepdims=1), n("Add", ["a", "lr"], ["b"]),
             n("ReduceMean", ["encoder_hidden_states", "ax12"], ["e"], keepdims=0),
             n("Unsqueeze", ["e", "ax1234"], ["e5"]), n("Add", ["b", "e5"], ["c"]),
             n("Cast", ["class_labels"], ["c16"], to=F), n("Mul", ["c16", "k"], ["cs"]),
             n("Unsqueeze", ["cs", "ax1234"], ["c5"]), n("Add", ["c", "c5"], ["noise_pred"])]
    _save(helper.make_graph(nodes, "tiny_unet", ins, [v("noise_pred", F, ["B", 4, "T", "H", "W"])], consts), path)


def _save(graph, path):
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    onnx.checker.check_model(m, full_check=True)
    onnx.save_model(m, str(path))


def unet_formula(f):
    """What tiny_unet computes, in float32."""
    b = f["sample"].shape[0]
    return (f["sample"].float() * (f["timestep"].float() / 1000) + f["low_res"].float().mean(1, keepdim=True)
            + f["encoder_hidden_states"].float().mean((1, 2)).reshape(b, 1, 1, 1, 1)
            + (f["class_labels"].float() / 1000).reshape(b, 1, 1, 1, 1))


def unet_feed(device, t=3, h=40, w=48, seed=0):
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=g).to(device)  # noqa: E731
    return dict(sample=r(2, 4, t, h, w), timestep=torch.tensor(958), low_res=r(2, 3, t, h, w),
                encoder_hidden_states=r(2, 7, 32), class_labels=torch.tensor([120, 20], device=device))


def _ort(path, feed):
    import onnxruntime as ort

    s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    kinds = {i.name: i.type for i in s.get_inputs()}
    np_feed = {k: v.cpu().numpy().astype(np.float16 if kinds[k] == "tensor(float16)" else v.cpu().numpy().dtype)
               for k, v in feed.items()}
    return dict(zip([o.name for o in s.get_outputs()], s.run(None, np_feed)))


def test_tiny_graphs_compute_what_the_gpu_tests_expect(tmp_path):
    # the GPU tests below compare TensorRT with these graphs; check the graphs here, on CPU
    tiny_unet_onnx(tmp_path / "u.onnx")
    f = unet_feed("cpu")
    got = torch.from_numpy(_ort(tmp_path / "u.onnx", f)["noise_pred"]).float()
    assert (got - unet_formula(f)).abs().max() < 2e-2
    tiny_raft_onnx(tmp_path / "r.onnx")
    x1, x2 = torch.randn(2, 3, 128, 136), torch.randn(2, 3, 128, 136)
    out = _ort(tmp_path / "r.onnx", dict(image1=x1, image2=x2))
    assert out["flow_up"].shape == (2, 2, 128, 136) and out["flow_low"].shape == (2, 2, 16, 17)
    assert np.allclose(out["flow_low"], torch.nn.functional.avg_pool2d(torch.from_numpy(out["flow_up"]), 8).numpy(),
                       atol=1e-5)


# --- real TensorRT + GPU -----------------------------------------------------------------------
PLAN = ProfilePlan(raft_pairs=2, raft_min=(128, 128), raft_opt=(128, 128), raft_max=(256, 256),
                   cfg_batch=2, clip_frames=4, min_clip_frames=1, latent_min=(16, 16), latent_opt=(32, 32),
                   latent_max=(64, 64), text_len=7, text_dim=32)


@pytest.fixture(scope="module")
def engines(tmp_path_factory):
    from uavrt.export.trt import build_engines

    d = tmp_path_factory.mktemp("trt")
    (d / "onnx").mkdir()
    tiny_raft_onnx(d / "onnx" / "raft.fp16.onnx")
    tiny_unet_onnx(d / "onnx" / "unet.fp16.onnx")
    build_engines(d / "onnx", d / "engines", plan=PLAN, optimization_level=0)
    return d


@pytest.mark.trt
@pytest.mark.gpu
def test_raft_engine_matches_onnxruntime(engines):
    be = TrtBackend(engines / "engines")
    run = be.load("raft")
    assert run.owns_outputs and be.load("raft") is run  # one context per engine
    for shape in [(2, 3, 128, 160), (1, 3, 256, 208)]:
        x1, x2 = torch.randn(*shape, device="cuda"), torch.randn(*shape, device="cuda")
        out = run(image1=x1, image2=x2)
        ref = _ort(engines / "onnx" / "raft.fp16.onnx", dict(image1=x1, image2=x2))
        for k in ("flow_low", "flow_up"):
            assert out[k].dtype == torch.float32 and out[k].device == x1.device
            # fp32 graph, TF32 off (Polygraphy's default): fp32-level agreement
            assert np.abs(out[k].cpu().numpy() - ref[k]).max() < 1e-4 * max(1.0, np.abs(ref[k]).max())
    with pytest.raises(InputError, match=r"raft\.image1: shape \(3, 3, 128, 128\) is outside"):
        run(image1=torch.zeros(3, 3, 128, 128, device="cuda"), image2=torch.zeros(3, 3, 128, 128, device="cuda"))


@pytest.mark.trt
@pytest.mark.gpu
def test_fp16_unet_engine_with_int64_inputs(engines):
    run = TrtBackend(engines / "engines").load("unet")
    for t, h, w in [(4, 32, 32), (1, 17, 64)]:
        f = unet_feed("cuda", t, h, w)
        out = run(**f)["noise_pred"]
        assert out.dtype == torch.float32 and out.shape == (2, 4, t, h, w)
        assert (out.cpu() - unet_formula({k: v.cpu() for k, v in f.items()})).abs().max() < 2e-2


@pytest.mark.trt
@pytest.mark.gpu
def test_outputs_are_owned_unless_copied(engines):
    x = [torch.randn(1, 3, 128, 128, device="cuda") for _ in range(4)]
    run = TrtBackend(engines / "engines").load("raft")
    first = run(image1=x[0], image2=x[1])["flow_up"]
    kept = first.clone()
    run(image1=x[2], image2=x[3])
    assert not torch.equal(first, kept)  # the same buffer, overwritten by the next call
    run_copy = TrtBackend(engines / "engines", copy_outputs=True).load("raft")
    a = run_copy(image1=x[0], image2=x[1])["flow_up"]
    run_copy(image1=x[2], image2=x[3])
    assert torch.equal(a, kept)


@pytest.mark.trt
@pytest.mark.gpu
def test_cuda_graphs_match_eager(engines):
    eager = TrtBackend(engines / "engines").load("unet")
    graphed = TrtBackend(engines / "engines", cuda_graphs=True).load("unet")
    graphs = []
    for seed, (t, h, w) in enumerate([(4, 32, 32)] * 3 + [(2, 16, 48)] * 2):
        f = unet_feed("cuda", t, h, w, seed)
        # a stale capture (old inputs or addresses) would be off by O(1): the inputs change per seed
        assert (graphed(**f)["noise_pred"] - eager(**f)["noise_pred"]).abs().max() < 1e-3
        graphs.append(graphed._graph)
    assert graphs[0] is graphs[1] is graphs[2]  # captured once, replayed
    assert graphs[3] is graphs[4] is not graphs[0]  # new shape: recaptured once


@pytest.mark.trt
@pytest.mark.gpu
def test_engines_share_one_activation_buffer(engines):
    be = TrtBackend(engines / "engines")
    raft, unet = be.load("raft"), be.load("unet")  # the buffer may grow (and re-point raft) here
    assert be.activation_bytes == max(raft.engine.device_memory_size_v2, unet.engine.device_memory_size_v2, 1)
    assert be.memory.contexts == [raft.context, unet.context]
    f = unet_feed("cuda", 2, 16, 16)
    assert (unet(**f)["noise_pred"].cpu() - unet_formula({k: v.cpu() for k, v in f.items()})).abs().max() < 2e-2
    x1, x2 = torch.randn(1, 3, 128, 128, device="cuda"), torch.randn(1, 3, 128, 128, device="cuda")
    ref = _ort(engines / "onnx" / "raft.fp16.onnx", dict(image1=x1, image2=x2))["flow_up"]
    assert np.abs(raft(image1=x1, image2=x2)["flow_up"].cpu().numpy() - ref).max() < 1e-4 * max(1.0, np.abs(ref).max())


@pytest.mark.trt
@pytest.mark.gpu
def test_engine_from_other_tensorrt_is_refused_before_deserialising(engines, tmp_path):
    import shutil

    d = tmp_path / "e"
    shutil.copytree(engines / "engines", d)
    m = json.loads((d / cache.MANIFEST).read_text())
    m["engines"]["raft.fp16"]["fields"]["tensorrt_version"] = "10.0.0.1"
    (d / cache.MANIFEST).write_text(json.dumps(m))
    with pytest.raises(EngineMismatch, match="TensorRT 10.0.0.1"):
        TrtBackend(d).load("raft")


def test_backend_does_not_import_the_engine_builder():
    # the environment helpers live in uavrt/trt_env.py; the runtime must not drag in the builder
    import subprocess

    code = ("import sys, uavrt.runtime.trt_backend, uavrt.trt_env; "
            "print(sorted(m for m in sys.modules if m in ('uavrt.export.trt', 'uavrt.export.trt_ops', 'polygraphy')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]"
