"""Bidirectional flows (RAFT_bi): golden parity, pair order, chunking, resize quirk/fix, limits."""

from __future__ import annotations

import pytest
import torch

from uavrt.errors import ConfigError, InputError
from uavrt.spec import RAFT as RAFT_SPEC
from uavrt.golden import Context, load_cases, run_case
from uavrt.models.raft import build_raft
from uavrt.runtime.flow import bidirectional_flows
from uavrt.runtime.torch_backend import TorchBackend


def _frames(shape, seed=0):
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def _pair_fn(image1, image2):
    """A per-pair function that tells the two images apart (stand-in for RAFT's flow_up)."""
    return torch.stack([image1[:, 0] - 2 * image2[:, 1], image1[:, 2] * image2[:, 0]], dim=1)


def test_golden_raft_bi(golden_dir):
    (case,) = load_cases(golden_dir, only=["raft_bi"])
    results = run_case(case, Context(backend=TorchBackend()))
    for r in results:
        print(r.line())
    assert len(results) == 2 and all(r.passed for r in results), [r.line() for r in results]


@pytest.mark.parametrize("pairs_per_call", [1, 3, 12, 100])
def test_pair_order_layout_and_chunking(pairs_per_call):
    frames = _frames((2, 3, 4, 128, 136))  # multiples of 8: no resize
    calls = []

    def flow_fn(a, b):
        calls.append(a.shape[0])
        return _pair_fn(a, b)

    fw, bw = bidirectional_flows(frames, flow_fn, pairs_per_call=pairs_per_call)
    assert fw.shape == bw.shape == (2, 2, 3, 128, 136)
    for b in range(2):
        for i in range(3):
            assert torch.equal(fw[b, :, i], _pair_fn(frames[b, :, i][None], frames[b, :, i + 1][None])[0])
            assert torch.equal(bw[b, :, i], _pair_fn(frames[b, :, i + 1][None], frames[b, :, i][None])[0])
    assert sum(calls) == 12 and max(calls) == min(pairs_per_call, 12)


def test_chunking_does_not_change_raft_flows(golden_dir):
    (case,) = load_cases(golden_dir, only=["raft_bi"])
    runner = TorchBackend().from_module(RAFT_SPEC, build_raft(case.weights(), iters=1))
    fn = lambda a, b: runner(image1=a, image2=b)["flow_up"]
    frames = _frames((1, 3, 2, 128, 128), seed=1)
    # the forward and the backward pair: one call of 2 vs two calls of 1
    one = bidirectional_flows(frames, fn, pairs_per_call=1)
    two = bidirectional_flows(frames, fn, pairs_per_call=2)
    assert one[0].abs().max() > 0.01 and not torch.equal(one[0], one[1])  # real flows, not zeros
    for a, b in zip(one, two):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


def _constant_flow(u, v):
    def fn(a, b):
        out = torch.empty(a.shape[0], 2, *a.shape[-2:])
        out[:, 0], out[:, 1] = u, v
        return out
    return fn


def test_fix_resize_scales_vectors_and_parity_keeps_official_quirk():
    u, v = 1.5, -2.0
    # 121x134 runs at 128x136
    parity, _ = bidirectional_flows(_frames((1, 3, 2, 121, 134)), _constant_flow(u, v))
    fixed, _ = bidirectional_flows(_frames((1, 3, 2, 121, 134)), _constant_flow(u, v), fix_resize=True)
    tol = {"atol": 1e-6, "rtol": 0}
    # fix: x by new_w/old_w, y by new_h/old_h, everywhere
    torch.testing.assert_close(fixed[0, 0], torch.full((1, 121, 134), u * 134 / 136), **tol)
    torch.testing.assert_close(fixed[0, 1], torch.full((1, 121, 134), v * 121 / 128), **tol)
    # parity: rows 0 and 1 scaled by the height and width ratios, the rest unscaled
    expect = torch.tensor([u, v]).reshape(2, 1, 1, 1).repeat(1, 1, 121, 134)
    expect[:, :, 0] *= 121 / 128
    expect[:, :, 1] *= 134 / 136
    torch.testing.assert_close(parity[0], expect, **tol)


def test_fix_resize_is_parity_at_multiples_of_8():
    frames = _frames((1, 3, 3, 128, 136))
    parity = bidirectional_flows(frames, _pair_fn)
    fixed = bidirectional_flows(frames, _pair_fn, fix_resize=True)
    assert all(torch.equal(a, b) for a, b in zip(parity, fixed))


@pytest.mark.parametrize("size", [(119, 200), (200, 119), (64, 64)])
def test_frames_below_raft_minimum_raise(size):
    def never(a, b):
        raise AssertionError("flow_fn must not be called")

    with pytest.raises(ConfigError, match="128") as err:
        bidirectional_flows(_frames((1, 3, 2, *size)), never)
    assert str(size) in str(err.value)


def test_input_validation():
    with pytest.raises(InputError, match=r"\[B, 3, T, H, W\]"):
        bidirectional_flows(torch.zeros(3, 2, 128, 128), _pair_fn)
    with pytest.raises(InputError, match="T=1"):
        bidirectional_flows(torch.zeros(1, 3, 1, 128, 128), _pair_fn)
    with pytest.raises(ConfigError, match="pairs_per_call"):
        bidirectional_flows(torch.zeros(1, 3, 2, 128, 128), _pair_fn, pairs_per_call=0)
    with pytest.raises(InputError, match="flow_fn returned shape"):
        bidirectional_flows(torch.zeros(1, 3, 2, 128, 128), lambda a, b: torch.zeros(1, 2, 16, 16))
