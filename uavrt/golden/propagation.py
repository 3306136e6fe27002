"""Golden kinds `propagation` (whole module) and `warp_pieces` (warp + consistency masks).

`ctx.propagator` picks the implementation: "torch" -> the reference in
uavrt.models.propagation, "kernel" -> uavrt.kernels (imported only then: it may need CUDA).
"""

from __future__ import annotations

from ..errors import check_choice
from ..models import propagation as ref

PROPAGATORS = ("torch", "kernel")


def _propagate_fn(ctx):
    check_choice("propagator", ctx.propagator, PROPAGATORS)
    if ctx.propagator == "kernel":
        from ..kernels import propagate
        return propagate
    return ref.propagate


def _warp_fns(ctx):
    """(flow_warp, fb_consistency_check): the kernel's when it exposes both, else the reference."""
    check_choice("propagator", ctx.propagator, PROPAGATORS)
    if ctx.propagator == "kernel":
        from .. import kernels
        if callable(getattr(kernels, "flow_warp", None)) and callable(getattr(kernels, "fb_consistency_check", None)):
            return kernels.flow_warp, kernels.fb_consistency_check
    return ref.flow_warp, ref.fb_consistency_check


def _run_propagation(case, ctx) -> dict:
    propagate = _propagate_fn(ctx)
    args = case.meta["args"]
    x, ff, fb = case.input("x"), case.input("flows_forward"), case.input("flows_backward")
    out = {}
    for name, interpolation, mode in args["variants"]:
        out[name] = propagate(x, ff, fb, interpolation=interpolation, mode=mode,
                              fuse_scale=args["fuse_scale"], alpha1=args["alpha1"], alpha2=args["alpha2"])
    return out


def _run_warp_pieces(case, ctx) -> dict:
    flow_warp, fb_check = _warp_fns(ctx)
    x, flow = case.input("x"), case.input("flow")
    grid = flow.permute(0, 2, 3, 1)  # [N, 2, H, W] -> [N, H, W, 2]
    out = {"warp_bilinear": flow_warp(x, grid, "bilinear"), "warp_nearest": flow_warp(x, grid, "nearest")}
    fw, bw = case.input("flow_fw"), case.input("flow_bw")
    for tag, a1, a2 in case.meta["args"]["fb_alphas"]:
        out[f"fb_valid_{tag}"] = fb_check(fw, bw, a1, a2)
    return out


def run(case, ctx) -> dict:
    if case.kind == "warp_pieces":
        return _run_warp_pieces(case, ctx)
    return _run_propagation(case, ctx)
