"""Device names are resolved to an explicit index in every backend (the first GPU run crashed on
`torch.device("cuda") != torch.device("cuda:0")`), checked on the CPU through FakeTensorMode."""

from __future__ import annotations

import pytest
import torch

from uavrt.devices import resolve_device
from uavrt.errors import ConfigError, InputError
from uavrt.models.release import build_network, load_network
from uavrt.runtime.fake import fake_cuda
from uavrt.runtime.torch_backend import TorchBackend
from uavrt.spec import UNET, VAE_3D


@pytest.fixture(scope="module")
def demo_dir():
    from uavrt.models.demo import demo_weights_dir
    return demo_weights_dir(0, with_raft=False)


@pytest.fixture(scope="module")
def demo_unet():
    from uavrt.models.demo import DEMO_UNET
    return dict(DEMO_UNET)


def test_resolve_device_pins_the_index():
    assert resolve_device("cuda") == torch.device("cuda:0")  # CPU build: no driver to ask, index 0
    assert resolve_device("cuda:1") == torch.device("cuda:1")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    for bad in ("tpu", "cuda:x", 3.5):
        with pytest.raises(ConfigError, match="device"):
            resolve_device(bad)


def test_torch_backend_on_bare_cuda_runs_cuda0_tensors(demo_unet):
    """`--device cuda`: tensors report cuda:0; the runner must accept them (fake CUDA, fp16)."""
    with fake_cuda():
        module = build_network("unet", demo_unet, "cuda:0", torch.float16)
        runner = TorchBackend("cuda", "fp16").from_module(UNET, module)
        assert runner.device == torch.device("cuda:0")
        inputs = UNET.sample_inputs({"B": 2, "T": 2, "H": 16, "W": 16, "L": 77,
                                     "C": demo_unet["cross_attention_dim"]}, device="cuda:0")
        out = runner(**inputs)["noise_pred"]
        assert out.device == torch.device("cuda:0") and out.dtype == torch.float32


def test_runner_names_a_tensor_on_another_device(demo_unet):
    with fake_cuda():
        runner = TorchBackend("cuda", "fp16").from_module(UNET, build_network("unet", demo_unet, "cuda:0",
                                                                              torch.float16))
        inputs = UNET.sample_inputs({"B": 1, "T": 2, "H": 16, "W": 16, "L": 77,
                                     "C": demo_unet["cross_attention_dim"]}, device="cuda:0")
        inputs["low_res"] = inputs["low_res"].cpu()
        with pytest.raises(InputError, match=r"unet\.low_res is on cpu, the runner on cuda:0"):
            runner(**inputs)


def test_load_in_place_copies_each_weight_once(demo_dir):
    """Loading at a device/dtype builds there and copies each checkpoint tensor once (cast on
    the way): no fp32 CPU module, no `.to()` afterwards; the runner keeps the very tensors."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class Ops(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.names = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            if not (isinstance(out, torch.Tensor) and out.device.type == "meta"):  # meta init is free
                self.names.append(func.__name__)
            return out

    with Ops() as ops:
        loaded = load_network(demo_dir, "vae_3d", device="cpu", dtype=torch.float16)
    module = loaded.module
    n_tensors = len({id(t) for t in list(module.parameters()) + list(module.buffers())})
    assert all(p.dtype == torch.float16 for p in module.parameters())
    assert ops.names.count("copy_.default") == len(module.state_dict()) >= n_tensors
    assert not [n for n in ops.names if n.startswith(("_to_copy", "normal_", "uniform_", "kaiming"))]
    ptrs = [p.data_ptr() for p in module.parameters()]
    runner = TorchBackend("cpu", "fp16").from_module(VAE_3D, module)  # the VAE runs fp32: it must cast
    assert all(p.dtype == torch.float32 for p in runner.module.parameters())
    loaded32 = load_network(demo_dir, "vae_3d", device="cpu", dtype=torch.float32)
    ptrs32 = [p.data_ptr() for p in loaded32.module.parameters()]
    runner32 = TorchBackend("cpu", "fp16").from_module(VAE_3D, loaded32.module)
    assert [p.data_ptr() for p in runner32.module.parameters()] == ptrs32 and ptrs


def test_shared_parameters_stay_shared(demo_unet):
    module = build_network("unet", demo_unet, "cpu", torch.float16)
    freqs = {id(m.freqs) for m in module.modules() if type(m).__name__ == "RotaryEmbedding"}
    assert len(freqs) == 1


def test_ort_cuda_provider_gets_the_device_id(monkeypatch, tmp_path):
    """cuda:1 must run the session on GPU 1 (I/O is bound there): the CUDA provider needs
    device_id. A strict fake of ONNX Runtime's session constructor normalises the providers with
    ORT's own `check_and_normalize_provider_args` (what InferenceSession does) and records them."""
    ort = pytest.importorskip("onnxruntime")
    from onnxruntime.capi.onnxruntime_inference_collection import check_and_normalize_provider_args
    from uavrt.runtime.ort_backend import OrtBackend

    available = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    seen = {}

    class Session:
        def __init__(self, path, sess_options=None, providers=None, provider_options=None, **kw):
            assert not kw, kw
            seen["providers"] = check_and_normalize_provider_args(providers, provider_options, available)

    monkeypatch.setattr(ort, "get_available_providers", lambda: list(available))
    monkeypatch.setattr(ort, "InferenceSession", Session)
    for device, want in (("cuda:1", "1"), ("cuda", "0")):
        backend = OrtBackend(device=device)
        backend._session(tmp_path / "g.onnx")
        names, options = seen["providers"]
        assert names == ["CUDAExecutionProvider", "CPUExecutionProvider"]
        assert options[0] == {"device_id": want} and options[1] == {}
    with pytest.raises(ConfigError, match="device_id"):
        OrtBackend(providers=[("CUDAExecutionProvider", {"device_id": 0})], device="cuda:1")
