"""Host (g++) build vs the torch reference (uavrt.models.propagation) on adversarial flows.

Tolerances: masks must be identical (0/1 decisions). Values: the kernel reproduces torch's CPU
arithmetic operation for operation (see propagate.h), so on x86 AVX2/AVX-512 torch the results
are bitwise equal; the bound allowed here, 1e-6 x max(1, max|ref|) (a few float32 ulps at the
largest value), leaves room only for torch builds whose grid_sample rounds the bilinear sum
differently (no FMA). Any real semantic difference (rounding mode, border, blend, frame order)
shows up as errors of order 1e-2..1.
"""

import pytest
import torch

from uavrt import kernels
from uavrt.models import propagation as ref

H, W = 20, 28


def _tol(r):
    return 1e-6 * max(1.0, r.abs().max().item())


def _frames(flow_pair, seed, B=2, T1=3):
    fw, bw = flow_pair(B, T1, H, W, seed=seed)
    def frames(f):  # [B, 2, T1, H, W] -> [(B T1), 2, H, W]
        return f.permute(0, 2, 1, 3, 4).reshape(B * T1, 2, H, W).contiguous()
    return frames(fw), frames(bw)


def _source_positions(flow):
    """Where grid_sample reads for flow [N, 2, H, W], computed with the reference's float ops."""
    gx = torch.arange(W, dtype=torch.float32).view(1, 1, W)
    gy = torch.arange(H, dtype=torch.float32).view(1, H, 1)
    vx = 2.0 * (gx + flow[:, 0]) / (W - 1) - 1.0
    vy = 2.0 * (gy + flow[:, 1]) / (H - 1) - 1.0
    return (vx + 1) * ((W - 1) / 2), (vy + 1) * ((H - 1) / 2)


def test_flows_cover_the_hard_cases(flow_pair):
    fw, _ = _frames(flow_pair, 0)
    sx, sy = _source_positions(fw)
    outside = (sx < 0) | (sx > W - 1) | (sy < 0) | (sy > H - 1)
    on_pixel = (sx == sx.round()) & (sy == sy.round()) & ~outside
    tie = ((sx - sx.floor()) == 0.5) | ((sy - sy.floor()) == 0.5)
    # ties both ways: floor even (rounds down) and floor odd (rounds up)
    tie_even = tie & (((sx - sx.floor()) == 0.5) & (sx.floor() % 2 == 0))
    tie_odd = tie & (((sx - sx.floor()) == 0.5) & (sx.floor() % 2 == 1))
    for name, m in (("outside", outside), ("on_pixel", on_pixel), ("tie_even", tie_even), ("tie_odd", tie_odd)):
        assert m.sum() > 20, f"the random flows have too few {name} samples ({m.sum().item()})"


@pytest.mark.parametrize("alphas", [(0.001, 0.05), (0.01, 0.5), (0.0, 1.0)])
def test_consistency_mask_identical(flow_pair, alphas):
    fw, bw = _frames(flow_pair, 1)
    a1, a2 = alphas
    got = kernels.fb_consistency_check(fw, bw, a1, a2)
    want = ref.fb_consistency_check(fw, bw, a1, a2)
    assert 0.05 < want.mean().item() < 0.95  # both occluded and valid pixels present
    assert torch.equal(got, want), f"{(got != want).sum().item()} mask pixels differ"


@pytest.mark.parametrize("interpolation", ["nearest", "bilinear"])
def test_flow_warp(assert_within, flow_pair, interpolation):
    fw, _ = _frames(flow_pair, 2)
    x = torch.randn(fw.shape[0], 5, H, W, generator=torch.Generator().manual_seed(3))
    grid = fw.permute(0, 2, 3, 1)
    got = kernels.flow_warp(x, grid, interpolation)
    want = ref.flow_warp(x, grid, interpolation)
    if interpolation == "nearest":
        assert torch.equal(got, want), "nearest sampling is a copy: it must match exactly"
    else:
        assert_within(got, want, atol=_tol(want))


@pytest.mark.parametrize("interpolation,mode,fuse_scale", [("nearest", "fuse", 0.5), ("bilinear", "fuse", 0.5),
                                                           ("nearest", "copy", 0.5), ("bilinear", "fuse", 0.3)])
def test_propagate(assert_within, flow_pair, interpolation, mode, fuse_scale):
    B, C, T = 2, 4, 5
    fw, bw = flow_pair(B, T - 1, H, W, seed=4)
    x = torch.randn(B, C, T, H, W, generator=torch.Generator().manual_seed(5))
    kw = dict(interpolation=interpolation, mode=mode, fuse_scale=fuse_scale, alpha1=0.001, alpha2=0.05)
    got = kernels.propagate(x, fw, bw, **kw)
    want = ref.propagate(x, fw, bw, **kw)
    assert not torch.equal(want, x)  # the flows really move values
    assert_within(got, want, atol=_tol(want))


def test_propagate_resized_flows(assert_within, flow_pair):
    """Flows at another resolution (non-integer ratio) go through the reference's area resize."""
    B, C, T = 1, 3, 4
    fw, bw = flow_pair(B, T - 1, 50, 70, seed=6, scale=10.0)  # 2.5x the latent size
    x = torch.randn(B, C, T, H, W, generator=torch.Generator().manual_seed(7))
    got = kernels.propagate(x, fw, bw, interpolation="bilinear")
    want = ref.propagate(x, fw, bw, interpolation="bilinear")
    assert_within(got, want, atol=_tol(want))


@pytest.mark.parametrize("alphas", [(0.001, 0.05), (0.01, 0.5)])
def test_consistency_mask_at_the_threshold(alphas):
    """Flows whose check lands within a few ulps of the threshold: the decision is decided by
    the exact float32 rounding of every operation, so only a faithful kernel agrees everywhere."""
    a1, a2 = alphas
    g = torch.Generator().manual_seed(8)
    N = 6
    shift = torch.randint(-2, 3, (N, 2, 1, 1), generator=g).double()  # integer: bw is read exactly
    fw = (shift + torch.zeros(N, 2, H, W, dtype=torch.float64))
    theta = torch.rand(N, 1, H, W, generator=g, dtype=torch.float64) * 6.2832
    direction = torch.cat([theta.cos(), theta.sin()], 1)
    # |d|^2 = a1 (|fw|^2 + |d - fw|^2) + a2, solved by fixed-point iteration in float64
    r = torch.full((N, 1, H, W), 0.3, dtype=torch.float64)
    for _ in range(50):
        d = r * direction
        r = (a1 * ((fw ** 2).sum(1, keepdim=True) + ((d - fw) ** 2).sum(1, keepdim=True)) + a2).sqrt()
    d = r * direction * (1 + torch.randint(-4, 5, r.shape, generator=g).double() * 1e-7)
    bw_at_target = (-fw + d).float()  # the value bw must have where fw points to
    # place it at the target pixel x + fw (constant integer shift per item: one-to-one)
    bw = torch.zeros(N, 2, H, W)
    for n in range(N):
        sx, sy = int(shift[n, 0]), int(shift[n, 1])
        bw[n] = torch.roll(bw_at_target[n], shifts=(sy, sx), dims=(1, 2))
    fw = fw.float()
    got = kernels.fb_consistency_check(fw, bw, a1, a2)
    want = ref.fb_consistency_check(fw, bw, a1, a2)
    assert 0.2 < want.mean().item() < 0.8, "the flows should sit on both sides of the threshold"
    assert torch.equal(got, want), f"{(got != want).sum().item()} of {got.numel()} mask pixels differ"

