"""Golden cases `raft` (RAFT in test mode) and `raft_bi` (bidirectional flows of a video)."""

from __future__ import annotations

from ..spec import RAFT as RAFT_SPEC
from ..models.raft import build_raft
from ..runtime.flow import bidirectional_flows


def _runner(case, ctx, iters: int):
    # a fresh module per iteration count: the count is baked into an exported graph
    return ctx.backend.from_module(RAFT_SPEC, build_raft(case.weights(), iters=iters))


def run(case, ctx) -> dict:
    if case.kind == "raft":
        return _run_raft(case, ctx)
    if case.kind == "raft_bi":
        return _run_raft_bi(case, ctx)
    raise ValueError(f"uavrt.golden.raft cannot run kind {case.kind!r}; expected 'raft' or 'raft_bi'")


def _run_raft(case, ctx) -> dict:
    image1, image2 = case.input("image1"), case.input("image2")
    out = {}
    for iters in case.meta["args"]["iters"]:
        res = _runner(case, ctx, iters)(image1=image1, image2=image2)
        out[f"flow_low_iters{iters}"] = res["flow_low"]
        out[f"flow_up_iters{iters}"] = res["flow_up"]
    return out


def _run_raft_bi(case, ctx) -> dict:
    runner = _runner(case, ctx, case.meta["args"]["iters"])
    fw, bw = bidirectional_flows(case.input("frames"), lambda a, b: runner(image1=a, image2=b)["flow_up"])
    return {"flows_forward": fw, "flows_backward": bw}
