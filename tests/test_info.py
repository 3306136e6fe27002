"""`uavrt info`: the environment report and the backend decisions (synthetic reports for the GPU cases)."""

import copy
import shutil
import sys

import pytest

from uavrt.info import environment_report, format_report, usable_backends

BACKENDS = {"torch-cpu", "torch-cuda", "onnxruntime-cpu", "onnxruntime-cuda", "tensorrt", "kernel-cpu", "kernel-cuda"}


@pytest.fixture(scope="module")
def report():
    return environment_report()


def test_report_observes_this_machine(report):
    import polygraphy
    import torch

    assert report["python"] == sys.version.split()[0]
    assert report["torch"]["version"] == torch.__version__
    assert report["torch"]["cuda_available"] == torch.cuda.is_available()
    assert report["packages"]["polygraphy"] == polygraphy.__version__
    assert len(report["torch"]["devices"]) == (torch.cuda.device_count() if torch.cuda.is_available() else 0)
    assert (report["gxx"]["path"] is not None) == (shutil.which("g++") is not None)
    try:
        import tensorrt
        assert report["tensorrt"]["version"] == tensorrt.__version__
    except ImportError:
        assert report["tensorrt"]["version"] is None and "error" in report["tensorrt"]


def test_backends_on_this_machine(report):
    import torch

    b = usable_backends(report)
    assert set(b) == BACKENDS and all(isinstance(why, str) and why for _, why in b.values())
    assert b["torch-cpu"][0] and b["torch-cuda"][0] == torch.cuda.is_available()
    assert b["kernel-cpu"][0] == (shutil.which("g++") is not None)
    if not torch.cuda.is_available():
        assert not b["tensorrt"][0] and not b["kernel-cuda"][0] and not b["onnxruntime-cuda"][0]


def _gpu_report():
    return {
        "uavrt": "0", "python": "3.11", "platform": "Linux", "cpu_count": 16, "host_memory_gib": 128.0,
        "packages": {"polygraphy": "0.53.6"},
        "torch": {"version": "2.13.0+cu130", "cuda_build": "13.0", "cuda_available": True,
                  "devices": [{"index": 0, "name": "NVIDIA H100 80GB HBM3", "compute_capability": "9.0",
                               "memory_gib": 79.2}]},
        "onnxruntime": {"version": "1.32.0", "providers": ["CUDAExecutionProvider", "CPUExecutionProvider"]},
        "tensorrt": {"version": "11.0.0.5"}, "nvrtc": {"version": "13.5"},
        "gxx": {"path": "/usr/bin/g++", "version": "g++ 12.2.0"},
    }


def test_everything_usable_on_a_gpu_machine():
    b = usable_backends(_gpu_report())
    assert all(ok for ok, _ in b.values()), b
    assert "TensorRT 11.0.0.5 on NVIDIA H100" in b["tensorrt"][1]


def test_each_missing_piece_is_named():
    r = _gpu_report()
    r["torch"].update(cuda_available=False, devices=[])
    b = usable_backends(r)
    assert not b["torch-cuda"][0] and "torch.cuda.is_available() is False" in b["torch-cuda"][1]
    assert not b["tensorrt"][0] and "needs a GPU" in b["tensorrt"][1]
    assert not b["kernel-cuda"][0] and not b["onnxruntime-cuda"][0]

    r = _gpu_report()
    r["tensorrt"] = {"version": None, "error": "ModuleNotFoundError: No module named 'tensorrt'"}
    r["onnxruntime"]["providers"] = ["CPUExecutionProvider"]
    r["nvrtc"] = {"version": None, "error": "RuntimeError: libnvrtc not found"}
    r["gxx"] = {"path": None, "version": None}
    b = usable_backends(r)
    assert b["tensorrt"] == (False, b["tensorrt"][1]) and "pip install tensorrt" in b["tensorrt"][1]
    assert not b["onnxruntime-cuda"][0] and "onnxruntime-gpu" in b["onnxruntime-cuda"][1]
    assert b["onnxruntime-cpu"][0]
    assert not b["kernel-cuda"][0] and "nvidia-cuda-nvrtc" in b["kernel-cuda"][1]
    assert not b["kernel-cpu"][0] and "g++ not found" in b["kernel-cpu"][1]

    r = copy.deepcopy(_gpu_report())
    r["torch"].update(cuda_build=None, cuda_available=False, devices=[])
    assert "CPU-only build" in usable_backends(r)["torch-cuda"][1]
    r["onnxruntime"] = {"version": None, "providers": [], "error": "ImportError"}
    assert not usable_backends(r)["onnxruntime-cpu"][0]


def test_format_report(report):
    text = format_report(report)
    for name in BACKENDS:
        assert f"  {name} " in text
    text = format_report(_gpu_report())
    assert "cuda:0 NVIDIA H100 80GB HBM3  compute capability 9.0  79.2 GiB" in text
    assert "tensorrt 11.0.0.5" in text


def test_bindings_without_a_real_library_are_not_a_usable_tensorrt():
    # e.g. the contract test's stub libraries (tests/trt11): the bindings import, TensorRT does not exist
    r = _gpu_report()
    r["tensorrt"] = {"version": "11.4.0.106",
                     "library_problem": "/tmp/x/libnvinfer.so.11 does not export getInferLibVersion(): a stub library"}
    ok, why = usable_backends(r)["tensorrt"]
    assert not ok and "not backed by a real TensorRT library" in why and "stub library" in why


def test_loaded_library_is_read_from_the_process_maps(tmp_path):
    from uavrt.trt_env import loaded_library

    maps = tmp_path / "maps"
    maps.write_text("7f00-7f01 r-xp 00000000 08:01 1 /usr/lib/libc.so.6\n"
                    "7f02-7f03 r-xp 00000000 08:01 2 /opt/trt/lib/libnvinfer_plugin.so.11\n"
                    "7f04-7f05 r-xp 00000000 08:01 3 /opt/trt/lib/libnvinfer.so.11.4.0\n")
    assert loaded_library(maps=str(maps)) == "/opt/trt/lib/libnvinfer.so.11.4.0"  # not the plugin library
    maps.write_text("7f00-7f01 r-xp 00000000 08:01 1 /usr/lib/libc.so.6\n")
    assert loaded_library(maps=str(maps)) is None
    assert loaded_library(maps=str(tmp_path / "absent")) is None
