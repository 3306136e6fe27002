"""Golden vectors of the official code vs the host (g++) build of the kernel."""

import pytest
import torch

from uavrt import kernels

VARIANTS = ["out_nearest_fuse", "out_bilinear_fuse", "out_nearest_copy"]


@pytest.mark.parametrize("case", ["propagation_flows4x", "propagation_samesize"])
@pytest.mark.parametrize("variant", VARIANTS)
def test_propagation_golden(load_case, case, variant):
    meta, t = load_case(case)
    args = meta["args"]
    (_, interpolation, mode), = [v for v in args["variants"] if v[0] == variant]
    out = kernels.propagate(t["inputs.x"], t["inputs.flows_forward"], t["inputs.flows_backward"],
                            interpolation=interpolation, mode=mode, fuse_scale=args["fuse_scale"],
                            alpha1=args["alpha1"], alpha2=args["alpha2"])
    expected = t[f"expected.{variant}"]
    assert out.shape == expected.shape and out.dtype == torch.float32
    err = (out - expected).abs().max().item()
    assert err <= meta["tolerance"][variant]["atol"], f"{case}/{variant}: max |diff| {err}"


def test_warp_pieces_golden(load_case):
    meta, t = load_case("warp_pieces")
    grid = t["inputs.flow"].permute(0, 2, 3, 1)  # [N, H, W, 2] like the official call
    for mode in ("bilinear", "nearest"):
        out = kernels.flow_warp(t["inputs.x"], grid, mode)
        err = (out - t[f"expected.warp_{mode}"]).abs().max().item()
        assert err <= meta["tolerance"][f"warp_{mode}"]["atol"], f"warp_{mode}: max |diff| {err}"
    for tag, a1, a2 in meta["args"]["fb_alphas"]:
        mask = kernels.fb_consistency_check(t["inputs.flow_fw"], t["inputs.flow_bw"], a1, a2)
        expected = t[f"expected.fb_valid_{tag}"]
        assert mask.shape == expected.shape
        assert torch.equal(mask, expected), f"fb_valid_{tag}: {(mask != expected).sum().item()} pixels differ"
