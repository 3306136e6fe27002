"""Backend selection and device names."""

import pytest
import torch
from torch._subclasses.fake_tensor import FakeTensorMode

from uavrt.config import BackendConfig, OrtOptions
from uavrt.devices import resolve_device
from uavrt.errors import ConfigError
from uavrt.runtime.factory import make_backend

from fakes import FakeUNet


def test_tensorrt_backend_gets_the_configured_precision(monkeypatch):
    import uavrt.runtime.trt_backend as tb
    seen = {}

    class Probe:  # stands in for TrtBackend, whose constructor needs TensorRT and a GPU
        def __init__(self, engines, **kwargs):
            seen.update(kwargs, engines=engines)

    monkeypatch.setattr(tb, "TrtBackend", Probe)
    make_backend(BackendConfig(backend="tensorrt", engines="e", precision="fp32"))
    assert seen["precision"] == "fp32" and seen["engines"] == "e"


def test_onnxruntime_options_reach_the_backend():
    pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")
    be = make_backend(BackendConfig(backend="onnxruntime", ort=OrtOptions(threads=1)))
    assert be.threads == 1


def test_bare_cuda_resolves_to_an_indexed_device():
    # tensors report cuda:0 and torch.device("cuda:0") != torch.device("cuda")
    assert resolve_device("cuda") == torch.device("cuda", torch.cuda.current_device() if torch.cuda.is_available()
                                                  else 0)
    assert resolve_device("cuda:1") == torch.device("cuda", 1) and resolve_device("cpu") == torch.device("cpu")
    for bad in ("tpu", "foo", "cuda:x", 3.5):
        with pytest.raises(ConfigError, match="device"):
            resolve_device(bad)


def test_a_runner_on_bare_cuda_accepts_cuda0_tensors():
    runner = FakeUNet(device="cuda")
    with FakeTensorMode(allow_non_fake_inputs=True):
        x = torch.zeros((2, 4, 8, 8, 8), device="cuda:0")
        lr = torch.zeros((2, 3, 8, 8, 8), device="cuda:0")
        out = runner(sample=x, timestep=torch.zeros((), dtype=torch.int64, device="cuda:0"), low_res=lr,
                     encoder_hidden_states=torch.zeros((2, 7, 32), device="cuda:0"),
                     class_labels=torch.zeros(2, dtype=torch.int64, device="cuda:0"))
        assert out["noise_pred"].device == torch.device("cuda", 0)
