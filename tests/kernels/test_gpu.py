"""CUDA (NVRTC) build of the kernel on a GPU. Skipped, with the reason, when there is none.

Tolerances:
- vs the host build: bitwise. Both compile the same propagate.h with IEEE float32 operations
  only (NVRTC --fmad=false, explicit fmaf, precise division, no flush-to-zero), so any
  difference is a bug, not rounding.
- golden cases: each case's atol (masks exact), as for the host build.
- vs torch's own CUDA reference: torch's CUDA grid_sample forms bilinear weights differently from
  its CPU kernel (which the golden data and this kernel follow), so values differ by float32
  ulps and a mask pixel may flip at the threshold: masks may differ at <= 0.1% of pixels,
  values must agree within 1e-5 x max|ref| at >= 99.5% of elements.
- fp16 latents vs the float32 reference: 2e-3 x max|ref| (two fp16 ulps at the largest value).
"""

import pytest
import torch

from uavrt import kernels
from uavrt.errors import InputError
from uavrt.models import propagation as ref

pytestmark = pytest.mark.gpu
CUDA = "cuda"


def _case_inputs(flow_pair, B=2, C=4, T=6, H=24, W=40, seed=11):
    fw, bw = flow_pair(B, T - 1, H, W, seed=seed)
    x = torch.randn(B, C, T, H, W, generator=torch.Generator().manual_seed(seed)) * 2
    return x, fw, bw


VARIANTS = [("nearest", "fuse"), ("bilinear", "fuse"), ("nearest", "copy")]


@pytest.mark.parametrize("case", ["propagation_flows4x", "propagation_samesize"])
def test_golden_on_gpu(load_case, case):
    meta, t = load_case(case)
    args = meta["args"]
    x, ff, fb = (t[f"inputs.{k}"].to(CUDA) for k in ("x", "flows_forward", "flows_backward"))
    for name, interpolation, mode in args["variants"]:
        out = kernels.propagate(x, ff, fb, interpolation=interpolation, mode=mode, fuse_scale=args["fuse_scale"],
                                alpha1=args["alpha1"], alpha2=args["alpha2"])
        assert out.device.type == "cuda"
        err = (out.cpu() - t[f"expected.{name}"]).abs().max().item()
        assert err <= meta["tolerance"][name]["atol"], f"{case}/{name}: max |diff| {err}"


def test_warp_pieces_on_gpu(load_case):
    meta, t = load_case("warp_pieces")
    fw, bw = t["inputs.flow_fw"].to(CUDA), t["inputs.flow_bw"].to(CUDA)
    for tag, a1, a2 in meta["args"]["fb_alphas"]:
        assert torch.equal(kernels.fb_consistency_check(fw, bw, a1, a2).cpu(), t[f"expected.fb_valid_{tag}"])
    grid = t["inputs.flow"].permute(0, 2, 3, 1).to(CUDA)
    for mode in ("bilinear", "nearest"):
        out = kernels.flow_warp(t["inputs.x"].to(CUDA), grid, mode).cpu()
        assert (out - t[f"expected.warp_{mode}"]).abs().max().item() <= meta["tolerance"][f"warp_{mode}"]["atol"]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
@pytest.mark.parametrize("interpolation,mode", VARIANTS)
def test_gpu_equals_host_build(flow_pair, dtype, interpolation, mode):
    x, fw, bw = _case_inputs(flow_pair)
    x = x.to(dtype)
    host = kernels.propagate(x, fw, bw, interpolation=interpolation, mode=mode)
    gpu = kernels.propagate(x.to(CUDA), fw.to(CUDA), bw.to(CUDA), interpolation=interpolation, mode=mode)
    assert gpu.dtype == dtype
    assert torch.equal(gpu.cpu(), host), f"{(gpu.cpu() != host).sum().item()} elements differ from the host build"


def test_gpu_masks_and_warps_equal_host_build(flow_pair):
    x, fw, bw = _case_inputs(flow_pair)
    f, b = fw[:, :, 0].contiguous(), bw[:, :, 0].contiguous()
    assert torch.equal(kernels.fb_consistency_check(f.to(CUDA), b.to(CUDA), 0.001, 0.05).cpu(),
                       kernels.fb_consistency_check(f, b, 0.001, 0.05))
    for mode in ("bilinear", "nearest"):
        grid = f.permute(0, 2, 3, 1)
        assert torch.equal(kernels.flow_warp(x[:, :, 0].to(CUDA), grid.to(CUDA), mode).cpu(),
                           kernels.flow_warp(x[:, :, 0], grid, mode))


@pytest.mark.parametrize("interpolation,mode", VARIANTS)
def test_gpu_vs_torch_cuda_reference(flow_pair, interpolation, mode):
    x, fw, bw = (t.to(CUDA) for t in _case_inputs(flow_pair))
    got = kernels.propagate(x, fw, bw, interpolation=interpolation, mode=mode)
    want = ref.propagate(x, fw, bw, interpolation=interpolation, mode=mode)
    close = (got - want).abs() <= 1e-5 * max(1.0, want.abs().max().item())
    assert close.float().mean().item() >= 0.995
    f = fw[:, :, 0].contiguous()
    b = bw[:, :, 0].contiguous()
    masks_differ = (kernels.fb_consistency_check(f, b, 0.001, 0.05) != ref.fb_consistency_check(f, b, 0.001, 0.05))
    assert masks_differ.float().mean().item() <= 1e-3


@pytest.mark.parametrize("interpolation", ["nearest", "bilinear"])
def test_gpu_float16(assert_within, flow_pair, interpolation):
    x, fw, bw = _case_inputs(flow_pair)
    x16 = x.half().to(CUDA)
    got = kernels.propagate(x16, fw.to(CUDA), bw.to(CUDA), interpolation=interpolation)
    want = ref.propagate(x16.float(), fw.to(CUDA), bw.to(CUDA), interpolation=interpolation)
    assert got.dtype == torch.float16
    assert_within(got.float(), want, atol=2e-3 * max(1.0, want.abs().max().item()))


def test_runs_on_the_current_stream(flow_pair):
    x, fw, bw = (t.to(CUDA) for t in _case_inputs(flow_pair))
    expected = kernels.propagate(x, fw, bw)
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        out = kernels.propagate(x, fw, bw)
    side.synchronize()
    assert torch.equal(out, expected)


def test_flows_on_another_device_are_refused(flow_pair):
    x, fw, bw = _case_inputs(flow_pair)
    with pytest.raises(InputError, match="one device"):
        kernels.propagate(x.to(CUDA), fw, bw)



def test_selfcheck_on_gpu():
    """What the acceptance script reports: every comparison bit-exact, timings present."""
    from uavrt.kernels.selfcheck import gpu_check
    report = gpu_check("cuda:0", time_shapes=((1, 4, 8, 64, 64),), warmup=2, iters=5)
    assert report["all_bit_exact"], [r for r in report["comparisons"] if not r["bit_exact"]]
    assert len(report["timings"]) == 2 and all(t["kernel_ms"] > 0 for t in report["timings"])
