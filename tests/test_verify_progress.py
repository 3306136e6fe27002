"""`uavrt verify` without prebuilt graphs exports on the fly: it says so, per network and backend,
with the time taken (issue 16 item 10: 15 silent minutes were the demo U-Net's ONNX export)."""

import pytest
import torch

from uavrt.runtime.torch_backend import TorchBackend
from uavrt.spec import NetworkSpec, f32
from uavrt.verify import Tolerance, verify

TOY = NetworkSpec("toy", inputs=(f32("x", "B", 16),), outputs=(f32("y", "B", 8),), example={"B": 3})


class Toy(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.a = torch.nn.Linear(16, 8)

    def forward(self, x):
        return (self.a(x),)


def test_progress_says_export_and_time():
    pytest.importorskip("onnxruntime")
    from uavrt.runtime.ort_backend import OrtBackend
    torch.manual_seed(0)
    lines = []
    rep = verify({"torch": TorchBackend(), "onnxruntime": OrtBackend()}, {"toy": (TOY, Toy())},
                 {"toy": {"x": torch.randn(3, 16)}}, tolerances={"toy": Tolerance(1e-4, 1e-4)}, progress=lines.append)
    assert rep.passed
    assert lines[0] == "toy on torch: running ..."
    assert lines[2].startswith("toy on onnxruntime: exporting to ONNX")
    assert lines[1].startswith("toy on torch: done in ") and lines[3].startswith("toy on onnxruntime: done in ")
