import os
from pathlib import Path

import pytest
import torch

GOLDEN = Path(__file__).parent / "data" / "golden"


def pytest_configure(config):
    config.addinivalue_line("markers", "gpu: needs a CUDA GPU (skipped with the reason when absent)")
    config.addinivalue_line("markers", "trt: needs TensorRT (skipped with the reason when absent)")
    config.addinivalue_line("markers", "slow: slow test (run with UAVRT_SLOW=1)")
    config.addinivalue_line("markers", "trt11_contract: the TensorRT 11.4 API contract (tests/trt11; CPU, subprocesses)")


def _has_trt():
    try:
        import tensorrt  # noqa: F401
        return True
    except Exception:
        return False


def pytest_collection_modifyitems(config, items):
    gpu = torch.cuda.is_available()
    trt = None
    slow = os.environ.get("UAVRT_SLOW") == "1"
    for item in items:
        # markers, not `item.keywords`: keywords also hold every parent node's name, so a checkout
        # in a folder named "trt" or "gpu" would skip the whole suite
        if item.get_closest_marker("gpu") and not gpu:
            item.add_marker(pytest.mark.skip(reason="no CUDA GPU on this machine (torch.cuda.is_available() is False)"))
        if item.get_closest_marker("trt"):
            trt = _has_trt() if trt is None else trt
            if not trt:
                item.add_marker(pytest.mark.skip(reason="TensorRT is not installed (pip install tensorrt; needs a GPU)"))
        if item.get_closest_marker("slow") and not slow:
            item.add_marker(pytest.mark.skip(reason="slow test: set UAVRT_SLOW=1 to run it"))


@pytest.fixture(scope="session")
def golden_dir():
    return GOLDEN


@pytest.fixture(autouse=True, scope="session")
def _threads():
    torch.manual_seed(0)
    yield


@pytest.fixture(autouse=True, scope="session")
def _cache_dir(tmp_path_factory):
    """Demo weights and compiled kernels go to a per-session cache, not the user's home."""
    old = os.environ.get("UAVRT_CACHE_DIR")
    os.environ["UAVRT_CACHE_DIR"] = str(tmp_path_factory.mktemp("uavrt-cache"))
    yield
    if old is None:
        os.environ.pop("UAVRT_CACHE_DIR", None)
    else:
        os.environ["UAVRT_CACHE_DIR"] = old
