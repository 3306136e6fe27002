"""The ONNX Runtime backend: I/O binding runs, metadata checks, errors at the boundary."""

from __future__ import annotations

import builtins
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "export"))
from toy_net import TOY, toy_net

from uavrt.errors import BackendUnavailable, ConfigError, EngineMismatch, InputError
from uavrt.export.metadata import weights_sha256
from uavrt.export.onnx_export import export_onnx
from uavrt.spec import NetworkSpec

pytest.importorskip("onnxruntime")
from uavrt.runtime.ort_backend import OrtBackend

CONFIG = {"channels": 32, "heads": 2}


@pytest.fixture(scope="module")
def toy():
    return toy_net(1)


@pytest.fixture(scope="module")
def graph(toy, tmp_path_factory):
    path = tmp_path_factory.mktemp("ort") / "toy.fp32.onnx"
    return export_onnx(toy, TOY, path, weights_hash=weights_sha256(toy.state_dict()), config=CONFIG)


def test_runner_matches_torch_at_two_shapes(toy, graph):
    runner = OrtBackend().load(TOY, graph, expect={"weights_hash": weights_sha256(toy.state_dict()),
                                                   "config": CONFIG, "precision": "fp32"})
    assert runner.precision == "fp32" and runner.device == torch.device("cpu")
    for dims in ({"B": 2, "T": 3, "H": 8, "W": 8}, {"B": 1, "T": 4, "H": 6, "W": 10}):
        x = TOY.sample_inputs(dims, seed=7)
        with torch.no_grad():
            ref = toy(**x)
        # float64 inputs are accepted and cast by the runner (floating inputs: any float dtype)
        out = runner(**{k: (v.double() if v.is_floating_point() else v) for k, v in x.items()})
        assert list(out) == ["out"] and out["out"].dtype == torch.float32
        assert out["out"].shape == ref.shape
        assert (out["out"] - ref).abs().max() <= 1e-4 * ref.abs().max()


def test_from_module_fp16_runs_fp16_graph(toy):
    runner = OrtBackend(precision="fp16").from_module(TOY, toy)
    assert runner.precision == "fp16" and runner.in_dtypes["sample"] == torch.float16
    x = TOY.sample_inputs({"B": 1, "T": 2, "H": 4, "W": 6}, seed=8)
    with torch.no_grad():
        ref = toy(**x)
    out = runner(**x)["out"]
    assert out.dtype == torch.float32 and (out - ref).abs().max() <= 1e-2 * ref.abs().max()


@pytest.mark.parametrize("field, value, shown", [
    ("weights_hash", "0" * 64, "weights_sha256 mismatch: expected '000"),
    ("precision", "fp16", "precision mismatch: expected 'fp16', found 'fp32'"),
    ("config", {"channels": 64, "heads": 2}, "config mismatch: key 'channels': expected 64, found 32"),
])
def test_metadata_mismatch_is_refused(graph, field, value, shown):
    with pytest.raises(EngineMismatch, match=shown.replace("(", r"\(")):
        OrtBackend().load(TOY, graph, expect={field: value})


def test_config_underscore_keys_are_informational(graph):
    OrtBackend().load(TOY, graph, expect={"config": {**CONFIG, "_comment": "release file"}})


def test_graph_of_another_network_is_refused(graph):
    other = NetworkSpec("vae_3d", TOY.inputs, TOY.outputs)
    with pytest.raises(EngineMismatch, match="network mismatch: expected 'vae_3d', found 'toy'"):
        OrtBackend().load(other, graph)


def test_missing_graph(tmp_path):
    with pytest.raises(EngineMismatch, match="uavrt export"):
        OrtBackend().load(TOY, tmp_path / "nope.onnx")


def test_load_network_uses_engines_folder(toy, graph):
    loaded = SimpleNamespace(module=toy, config=CONFIG, weights_hash=weights_sha256(toy.state_dict()))
    runner = OrtBackend(engines=graph.parent).load_network(TOY, loaded)
    assert runner.source == str(graph)
    stale = SimpleNamespace(module=toy, config=CONFIG, weights_hash="f" * 64)
    with pytest.raises(EngineMismatch, match="weights_sha256"):
        OrtBackend(engines=graph.parent).load_network(TOY, stale)


def test_bad_inputs_are_rejected_at_the_boundary(graph):
    runner = OrtBackend().load(TOY, graph)
    x = TOY.sample_inputs({"B": 1, "T": 2, "H": 4, "W": 4})
    with pytest.raises(InputError, match="timestep"):
        runner(**{**x, "timestep": torch.tensor(1.5)})
    with pytest.raises(InputError, match="missing"):
        runner(sample=x["sample"], timestep=x["timestep"])


def test_unknown_provider_and_device():
    with pytest.raises(ConfigError, match="providers='NoSuchExecutionProvider'.*CPUExecutionProvider"):
        OrtBackend(providers=["NoSuchExecutionProvider"])
    with pytest.raises(ConfigError, match="device"):
        OrtBackend(device="mps")


def test_onnxruntime_missing_says_what_to_install(monkeypatch):
    real_import = builtins.__import__

    def no_ort(name, *args, **kwargs):
        if name == "onnxruntime" or name.startswith("onnxruntime."):
            raise ImportError("No module named 'onnxruntime'")
        return real_import(name, *args, **kwargs)

    monkeypatch.delitem(sys.modules, "onnxruntime", raising=False)
    monkeypatch.setattr(builtins, "__import__", no_ort)
    with pytest.raises(BackendUnavailable, match="pip install onnxruntime"):
        OrtBackend()


def test_cuda_without_onnxruntime_gpu():
    import onnxruntime
    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("onnxruntime-gpu is installed: CUDA is available to ONNX Runtime")
    with pytest.raises(BackendUnavailable, match="onnxruntime-gpu"):
        OrtBackend(device="cuda")
