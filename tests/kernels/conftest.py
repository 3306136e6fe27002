"""Fixtures of the kernel tests: a private kernel cache and the reference/golden helpers."""

import json

import pytest
from safetensors.torch import load_file


@pytest.fixture(scope="session")
def kernel_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("uavrt-cache")


@pytest.fixture(autouse=True)
def _private_kernel_cache(kernel_cache, monkeypatch):
    # builds land in a per-session temp dir, never in the user's ~/.cache
    monkeypatch.setenv("UAVRT_CACHE_DIR", str(kernel_cache))


@pytest.fixture(scope="session")
def load_case(golden_dir):
    def load(name):
        meta = json.loads((golden_dir / f"{name}.json").read_text())
        tensors = {k: (v.float() if v.is_floating_point() else v)
                   for k, v in load_file(str(golden_dir / meta.get("file", f"{name}.safetensors"))).items()}
        return meta, tensors
    return load


@pytest.fixture(scope="session")
def nvrtc_ok():
    """Skip unless the emulated launch can run: gpu.py compiles the real CUBIN with NVRTC."""
    from uavrt.errors import BackendUnavailable
    from uavrt.kernels import nvrtc
    try:
        nvrtc.nvrtc_version()
        nvrtc._cuda_include_dir()
        import cuda.bindings.driver  # noqa: F401
    except (BackendUnavailable, ImportError) as e:
        pytest.skip(f"the emulated launch needs cuda-bindings and NVRTC (gpu.py compiles the real CUBIN): {e}")


@pytest.fixture
def emu(nvrtc_ok):
    """gpu.py launching on the emulated CUDA driver for the test (uavrt.kernels.emulator)."""
    from uavrt.kernels.emulator import emulated_cuda
    with emulated_cuda() as e:
        yield e


@pytest.fixture(scope="session")
def flow_pair():
    """flow_pair(B, T1, H, W, seed=...) -> (fw, bw): flows that exercise every branch of the kernel."""
    from uavrt.kernels.selfcheck import flow_pair
    return flow_pair


@pytest.fixture(scope="session")
def assert_within():
    def check(got, want, atol):
        """max |got - want| <= atol (torch.testing.assert_close would import torch.distributed: seconds)."""
        assert got.shape == want.shape, f"shape {tuple(got.shape)} != {tuple(want.shape)}"
        err = (got.float() - want.float()).abs().max().item()
        assert err <= atol, f"max |diff| {err:.3g} > atol {atol:.3g}"
    return check
