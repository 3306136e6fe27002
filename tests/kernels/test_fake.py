"""uavrt.kernels.propagate under FakeTensorMode (the fake-CUDA dry run): fake outputs of the right
shape, dtype and device, no launch, and the boundary checks still naming the tensor."""

import pytest
import torch
from torch._subclasses.fake_tensor import FakeTensor, FakeTensorMode

from uavrt import kernels
from uavrt.config import PropagationConfig
from uavrt.errors import InputError
from uavrt.kernels import api

CUDA = "cuda:0"


@pytest.fixture
def no_launch(monkeypatch):
    """Any attempt to reach a launcher (host or gpu build) fails the test."""
    def refuse(device):
        pytest.fail(f"propagate tried to launch a kernel on {device} under FakeTensorMode")
    monkeypatch.setattr(api, "_backend", refuse)


def _fake_inputs(dtype=torch.float16, device=CUDA, flow_device=CUDA, T=8, h=60, w=107, flow_hw=(240, 428)):
    x = torch.empty(1, 4, T, h, w, dtype=dtype, device=device)
    fw = torch.empty(1, 2, T - 1, *flow_hw, device=flow_device)
    bw = torch.empty(1, 2, T - 1, *flow_hw, device=flow_device)
    return x, fw, bw


@pytest.mark.parametrize("dtype", [torch.float16, torch.float32])
@pytest.mark.parametrize("interpolation,mode", [("nearest", "fuse"), ("bilinear", "fuse"), ("nearest", "copy")])
def test_fake_cuda_result(no_launch, dtype, interpolation, mode):
    p = PropagationConfig(interpolation=interpolation, mode=mode)
    with FakeTensorMode():
        x, fw, bw = _fake_inputs(dtype)
        out = kernels.propagate(x, fw, bw, interpolation=p.interpolation, mode=p.mode, fuse_scale=p.fuse_scale,
                                alpha1=p.alpha1, alpha2=p.alpha2)  # the pipeline's call
        assert isinstance(out, FakeTensor)
        assert out.shape == x.shape and out.dtype == dtype and out.device == torch.device(CUDA)
        assert out.is_contiguous()


def test_fake_non_contiguous_input_gives_contiguous_output(no_launch):
    with FakeTensorMode():
        x, fw, bw = _fake_inputs()
        B, C, T, h, w = x.shape  # channels-last-like strides
        xv = torch.empty_strided(x.shape, (C * T * h * w, 1, C * h * w, C * w, C), dtype=x.dtype, device=CUDA)
        out = kernels.propagate(xv, fw, bw)
        assert not xv.is_contiguous() and out.is_contiguous() and out.shape == x.shape


def test_the_pipeline_picks_the_custom_op():
    from uavrt.runtime.upscaler import get_propagator
    assert get_propagator("kernel") is kernels.propagate
    assert torch.ops.uavrt.propagate.default is not None


@pytest.mark.parametrize("change,needle", [
    (dict(flow_device="cpu"), "flows_forward is on cpu but the features are on cuda:0"),
    (dict(device="cpu"), "flows_forward is on cuda:0 but the features are on cpu"),
    (dict(dtype=torch.float64), "x has dtype torch.float64"),
    (dict(dtype=torch.bfloat16), "x has dtype torch.bfloat16"),
])
def test_fake_mismatch_names_the_tensor(no_launch, change, needle):
    with FakeTensorMode():
        x, fw, bw = _fake_inputs(**change)
        with pytest.raises(InputError) as e:
            kernels.propagate(x, fw, bw)
    assert needle in str(e.value)


def test_fake_backward_flow_on_another_device(no_launch):
    with FakeTensorMode():
        x, fw, _ = _fake_inputs()
        bw = torch.empty(fw.shape, device="cpu")
        with pytest.raises(InputError, match="flows_backward is on cpu"):
            kernels.propagate(x, fw, bw)


def test_the_op_itself_checks_its_inputs(no_launch):
    """Called as torch.ops.uavrt.propagate (bypassing the Python wrapper), fake mode still refuses."""
    with FakeTensorMode():
        x, fw, bw = _fake_inputs(flow_device="cpu")
        with pytest.raises(InputError, match="flows_forward is on cpu"):
            torch.ops.uavrt.propagate(x, fw, bw, "nearest", "fuse", 0.5, 0.001, 0.05)
        x, fw, bw = _fake_inputs()
        out = torch.ops.uavrt.propagate(x, fw, bw, "nearest", "fuse", 0.5, 0.001, 0.05)
        assert out.shape == x.shape and out.device == torch.device(CUDA)


def test_real_cpu_call_goes_through_the_op():
    """The same op on real CPU tensors runs the host build (bit-exact with the launcher called directly)."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 3, 4, 9, 13, generator=g)
    fw = torch.randn(1, 2, 3, 9, 13, generator=g) * 2
    bw = -fw + torch.randn(fw.shape, generator=g) * 0.3
    from uavrt.kernels import host
    direct = api.propagate_with(host, x, fw, bw, interpolation="bilinear", mode="fuse", fuse_scale=0.5,
                                alpha1=0.001, alpha2=0.05)
    via_op = torch.ops.uavrt.propagate(x, fw, bw, "bilinear", "fuse", 0.5, 0.001, 0.05)
    assert torch.equal(via_op, direct) and torch.equal(kernels.propagate(x, fw, bw, interpolation="bilinear"), direct)


def test_opcheck_schema_and_fake():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(1, 2, 3, 5, 7, generator=g)
    fw = torch.randn(1, 2, 2, 5, 7, generator=g)
    torch.library.opcheck(torch.ops.uavrt.propagate.default, (x, fw, -fw, "nearest", "fuse", 0.5, 0.001, 0.05),
                          test_utils=("test_schema", "test_faketensor"))
