"""The GPU path on the CPU: the release-config pipeline through fake CUDA (uavrt.runtime.dryrun).

torch backend, cuda, fp16, the RELEASE network configs, tiling on (854x480: 15 tiles of 256),
propagation on, at real sizes; nothing is computed. One fake-CUDA context serves every case
(networks are built and each network signature traced once), so the module runs in one fixture.
"""

from __future__ import annotations

import pytest
import torch

from uavrt.config import BackendConfig, PropagationConfig, RunConfig, SamplerConfig

CFG = RunConfig(sampler=SamplerConfig(steps=2, propagation_steps=(0,)))
FP16_CUDA = BackendConfig(device="cuda", precision="fp16")
FRAMES = 9  # two 8-frame clips (merge exercised); 16 RAFT pairs = two calls of 8 (one signature)


def _kernel_has_fake_impl() -> bool:
    try:
        from uavrt.kernels import propagate  # noqa: F401
        return hasattr(torch.ops.uavrt, "propagate")  # a custom op: fake mode runs its fake impl
    except Exception:
        return False


@pytest.fixture(scope="module")
def runs():
    from uavrt.runtime.dryrun import DeviceMismatch, dry_run
    from uavrt.runtime.fake import fake_cuda
    out, cache = {}, {}
    with fake_cuda():
        out["854x480"] = dry_run(CFG, FP16_CUDA, 854, 480, FRAMES, count_flops=False, cache=cache)
        out["480x270"] = dry_run(CFG, FP16_CUDA, 480, 270, FRAMES, count_flops=False, cache=cache)

        def cpu_flows(up):  # a deliberately misplaced tensor: flows left on the host
            flows = up.flows
            up.flows = lambda low_res: tuple(f.cpu() for f in flows(low_res))
        with pytest.raises(DeviceMismatch) as e:
            dry_run(CFG, FP16_CUDA, 854, 480, FRAMES, count_flops=False, cache=cache, inject=cpu_flows)
        out["misplaced"] = str(e.value)
        if _kernel_has_fake_impl():
            kcfg = RunConfig(sampler=CFG.sampler, propagation=PropagationConfig(propagator="kernel"))
            out["kernel"] = dry_run(kcfg, FP16_CUDA, 854, 480, FRAMES, count_flops=False, cache=cache)
    return out


@pytest.mark.parametrize("size,out_hw,tile", [("854x480", (1920, 3416), 256), ("480x270", (1080, 1920), None)])
def test_release_path_on_fake_cuda(runs, size, out_hw, tile):
    r = runs[size]
    assert r.output == {"shape": (FRAMES, *out_hw, 3), "dtype": "torch.uint8", "device": "cpu"}
    assert r.tile == tile
    assert r.networks["unet"].calls == (15 if tile else 1) * 2 * 2  # tiles x clips x steps
    assert r.networks["raft"].calls == 2 and r.networks["vae_3d"].calls > 0


@pytest.mark.parametrize("size", ["854x480", "480x270"])
def test_no_host_transfer_or_sync_in_the_step_loop(runs, size):
    r = runs[size]
    assert r.loop_transfers == [], "\n".join(map(str, r.loop_transfers))
    # the only device -> host traffic is the window's uint8 frames (not float32: 4x the bytes)
    d2h = [t for t in r.transfers if t.kind == "d2h"]
    assert [(t.shape, t.dtype) for t in d2h] == [(r.output["shape"], "torch.uint8")]


def test_memory_stages_are_traced(runs):
    stages = runs["854x480"].memory.stages
    assert {"window", "raft", "unet", "propagation", "vae_3d"} <= set(stages)
    assert all(s.peak > 0 for s in stages.values())


def test_a_misplaced_tensor_fails_naming_it(runs):
    msg = runs["misplaced"]
    assert "on cpu" in msg and "(the run is on cuda:0)" in msg and "flow" in msg, msg


@pytest.mark.skipif(not _kernel_has_fake_impl(),
                    reason="uavrt.kernels.propagate has no torch custom op with a fake impl yet (helper kernel)")
def test_kernel_propagator_on_fake_cuda(runs):
    r = runs["kernel"]
    assert r.loop_transfers == [] and r.output["dtype"] == "torch.uint8"
