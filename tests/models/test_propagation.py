"""Propagation reference: golden cases, the pipeline trace, properties, validation."""

import json
from dataclasses import replace

import pytest
import torch
from safetensors.torch import load_file

from uavrt.errors import ConfigError, InputError
from uavrt.golden import Context, load_cases, run_case
from uavrt.models.propagation import fb_consistency_check, flow_warp, propagate, resize_flows
from uavrt.runtime.torch_backend import TorchBackend

CASES = ["propagation_flows4x", "propagation_samesize", "warp_pieces"]


@pytest.fixture(scope="module")
def ctx():
    return Context(backend=TorchBackend(), propagator="torch")


@pytest.mark.parametrize("name", CASES)
def test_golden(golden_dir, ctx, name):
    (case,) = load_cases(golden_dir, only=[name])
    results = run_case(case, ctx)
    print("\n".join(r.line() for r in results))
    assert results and all(r.passed for r in results), [r.line() for r in results if not r.passed]


def test_golden_unknown_propagator_is_reported(golden_dir, ctx):
    (case,) = load_cases(golden_dir, only=["propagation_samesize"])
    (result,) = run_case(case, replace(ctx, propagator="cuda"))
    assert not result.passed and "propagator" in result.error and "'kernel'" in result.error


def test_pipeline_trace_propagation(golden_dir):
    """x0 -> x0_propagated at the pipeline's propagation steps (flows at the latent size)."""
    meta = json.loads((golden_dir / "pipeline_vae_3d.json").read_text())
    t = load_file(str(golden_dir / "pipeline_vae_3d.safetensors"))
    for k in meta["args"]["propagation_steps"]:
        ref = t[f"trace.step{k}.x0_propagated"]
        got = propagate(t[f"trace.step{k}.x0"], t["inputs.flows_forward"], t["inputs.flows_backward"],
                        **meta["args"]["propagation_call"])
        torch.testing.assert_close(got, ref, rtol=0, atol=1e-5 * max(1.0, ref.abs().max().item()))


def _zero_flows(b, t, h, w):
    return torch.zeros(b, 2, t - 1, h, w), torch.zeros(b, 2, t - 1, h, w)


@pytest.mark.parametrize("interpolation", ["nearest", "bilinear"])
def test_zero_flow_fuse_is_the_two_pass_average(interpolation):
    """Zero flow: every pixel passes the check and warping is the identity, so pass 1 is
    p[i] = s p[i+1] + (1-s) x[i] (from the end) and pass 2 q[i] = s q[i-1] + (1-s) p[i]."""
    x = torch.randn(2, 3, 5, 4, 6, dtype=torch.float64)
    s = 0.3
    got = propagate(x, *_zero_flows(2, 5, 4, 6), interpolation=interpolation, mode="fuse", fuse_scale=s)
    p = [None] * 5
    p[4] = x[:, :, 4]
    for i in range(3, -1, -1):
        p[i] = s * p[i + 1] + (1 - s) * x[:, :, i]
    q = [p[0]]
    for i in range(1, 5):
        q.append(s * q[i - 1] + (1 - s) * p[i])
    torch.testing.assert_close(got, torch.stack(q, dim=2))


def test_zero_flow_copy_spreads_the_last_frame():
    x = torch.randn(1, 4, 6, 3, 5)
    got = propagate(x, *_zero_flows(1, 6, 3, 5), mode="copy")
    torch.testing.assert_close(got, x[:, :, -1:].expand_as(x), rtol=0, atol=0)


def test_inconsistent_flows_leave_x_unchanged():
    x = torch.randn(1, 4, 4, 6, 8)
    ff = torch.full((1, 2, 3, 6, 8), 3.0)  # fw and bw both +3 px: |fw + bw| = 6 px, never consistent
    assert not fb_consistency_check(ff[:, :, 0], ff[:, :, 0], 0.001, 0.05).any()
    torch.testing.assert_close(propagate(x, ff, ff.clone()), x, rtol=0, atol=0)


@pytest.mark.parametrize("interpolation", ["nearest", "bilinear"])
def test_flow_warp_integer_shift(interpolation):
    x = torch.randn(2, 3, 5, 7)
    flow = torch.zeros(2, 5, 7, 2)
    flow[..., 0], flow[..., 1] = 2.0, -1.0  # sample 2 px right, 1 px up
    got = flow_warp(x, flow, interpolation)
    want = torch.zeros_like(x)
    want[:, :, 1:, :-2] = x[:, :, :-1, 2:]  # outside the frame reads zero
    torch.testing.assert_close(got, want, rtol=0, atol=1e-6)


def test_fb_check_opposite_flows_are_valid():
    fw = torch.zeros(1, 2, 6, 8)
    fw[:, 0] = 1.0
    bw = -fw  # inverse of a 1-px translation: consistent except where x + fw leaves the frame
    mask = fb_consistency_check(fw, bw, 0.01, 0.5)
    assert mask.shape == (1, 1, 6, 8) and mask.dtype == fw.dtype
    assert mask[..., :-1].eq(1).all()


def test_resize_flows_area_and_scale():
    flows = torch.randn(1, 2, 3, 8, 12)
    same = resize_flows(flows, (8, 12))
    torch.testing.assert_close(same, flows, rtol=0, atol=0)
    down = resize_flows(flows, (2, 6))  # rows 8 -> 2 (4:1), cols 12 -> 6 (2:1)
    block_mean = flows.reshape(1, 2, 3, 2, 4, 6, 2).mean(dim=(4, 6))
    torch.testing.assert_close(down, block_mean * 0.5)  # release: both components * w/Wf
    fixed = resize_flows(flows, (2, 6), scale="per_axis")
    torch.testing.assert_close(fixed[:, 0], block_mean[:, 0] * 0.5)
    torch.testing.assert_close(fixed[:, 1], block_mean[:, 1] * 0.25)


def test_batch_rows_are_independent():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 4, 5, 8, 8, generator=g)
    ff, fb = torch.randn(2, 2, 4, 8, 8, generator=g), torch.randn(2, 2, 4, 8, 8, generator=g)
    both = propagate(x, ff, fb, interpolation="bilinear")
    for r in range(2):
        torch.testing.assert_close(both[r:r + 1], propagate(x[r:r + 1], ff[r:r + 1], fb[r:r + 1], interpolation="bilinear"))


def test_single_frame_passes_through():
    x = torch.randn(1, 4, 1, 3, 3)
    torch.testing.assert_close(propagate(x, *_zero_flows(1, 1, 3, 3)), x, rtol=0, atol=0)


@pytest.mark.parametrize("kwargs,param", [
    ({"interpolation": "bicubic"}, "interpolation"),
    ({"mode": "blend"}, "mode"),
    ({"fuse_scale": 1.5}, "fuse_scale"),
    ({"alpha2": -0.1}, "alpha2"),
])
def test_option_errors(kwargs, param):
    x = torch.zeros(1, 4, 3, 4, 4)
    with pytest.raises(ConfigError) as e:
        propagate(x, *_zero_flows(1, 3, 4, 4), **kwargs)
    assert e.value.param == param


def test_shape_errors():
    x = torch.zeros(1, 4, 3, 4, 4)
    with pytest.raises(InputError, match="flows_forward"):
        propagate(x, torch.zeros(1, 2, 3, 4, 4), torch.zeros(1, 2, 2, 4, 4))
    with pytest.raises(InputError, match="flow has shape"):
        flow_warp(torch.zeros(1, 4, 4, 4), torch.zeros(1, 4, 5, 2))


def test_half_precision_latents_keep_their_dtype(golden_dir):
    (case,) = load_cases(golden_dir, only=["propagation_samesize"])
    x, ff, fb = case.input("x"), case.input("flows_forward"), case.input("flows_backward")
    got = propagate(x.half(), ff, fb)
    assert got.dtype == torch.float16
    # only the fp16 rounding of the input and output remains (the maths runs in fp32)
    want = propagate(x.half().float(), ff, fb)
    torch.testing.assert_close(got.float(), want, rtol=1e-3, atol=1e-3)
