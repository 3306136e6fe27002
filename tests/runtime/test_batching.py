"""Batched U-Net calls (runtime/batching.py): grouping, the memory budget, and exactness."""

from __future__ import annotations

import pytest
import torch

from uavrt.config import RunConfig
from uavrt.errors import ConfigError
from uavrt.runtime.batching import clips_per_call, group_units, unet_sample_bytes


def test_group_units_keeps_plan_order_and_splits_on_shape_and_size():
    a, b = (1, 4, 8, 16, 16), (1, 4, 8, 16, 12)
    assert group_units([a, a, a, b, b, a], 2) == [[0, 1], [2], [3, 4], [5]]
    assert group_units([a, a, a], 1) == [[0], [1], [2]]
    assert group_units([a, a, a], 8) == [[0, 1, 2]]
    assert group_units([], 3) == []
    with pytest.raises(ValueError):
        group_units([a], 0)


def test_clips_per_call_override_budget_and_floor():
    kw = dict(shape=(8, 32, 32), guided=True, dtype_bytes=4)
    per_clip = 2 * unet_sample_bytes(8, 32, 32, 4)
    assert clips_per_call(3, 0, 10, **kw) == 3  # the override wins, budget ignored
    assert clips_per_call(30, None, 10, **kw) == 10  # never more than the units of a step
    assert clips_per_call(None, 3 * per_clip + 1, 10, **kw) == 3
    assert clips_per_call(None, per_clip - 1, 10, **kw) == 1  # the release's call size always runs
    assert clips_per_call(None, 100 * per_clip, 4, **kw) == 4
    assert clips_per_call(None, None, 4, **kw) == 1  # no budget, no override: release-shaped
    # without guidance a clip is one sample: twice as many fit
    assert clips_per_call(None, 3 * per_clip, 10, **{**kw, "guided": False}) == 6


def test_unet_batch_config():
    assert RunConfig().unet_batch == 1  # off by default (see runtime/batching.py: not bit-exact)
    assert RunConfig(unet_batch=None).unet_batch is None
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ConfigError, match="unet_batch"):
            RunConfig(unet_batch=bad)


def test_plan_groups_only_same_shape_pieces_and_uses_the_budget():
    from uavrt.models.schedulers import DDIMConfig
    from uavrt.runtime.plan import plan_window

    cfg = RunConfig(unet_batch=None)
    # 20 frames -> 3 clips; 40x40 with 24-px tiles overlapping 8 -> 2x2 tiles: 12 pieces
    plain = plan_window(cfg, DDIMConfig(), 20, 40, 40, "cpu", tile=24, tile_mode="blend")
    assert [len(c.pieces) for c in plain.calls] == [1] * len(plain.calls)  # no budget: one per call
    per_clip = 2 * unet_sample_bytes(8, 24, 24, 4)
    plan = plan_window(cfg, DDIMConfig(), 20, 40, 40, "cpu", tile=24, tile_mode="blend", budget_bytes=5 * per_clip)
    pieces = [p for c in plan.calls for p in c.pieces]
    assert pieces == [p for c in plain.calls for p in c.pieces]  # plan order kept
    for call in plan.calls:
        assert len(call.pieces) <= 5
        shapes = {(plan.clips[k].stop - plan.clips[k].start, plan.tiles[i].rows.stop - plan.tiles[i].rows.start,
                   plan.tiles[i].cols.stop - plan.tiles[i].cols.start) for i, k in call.pieces}
        assert len(shapes) == 1
    assert max(len(c.pieces) for c in plan.calls) > 1


def test_pipeline_golden_case_is_identical_batched_and_unbatched(golden_dir):
    # pipeline_vae_3d: 10 frames -> 2 clips per step, guidance: 2 calls of batch 2 vs 1 call of 4
    from uavrt.golden import Context, compare, load_cases
    from uavrt.golden import pipeline as golden_pipeline
    from uavrt.runtime.torch_backend import TorchBackend

    case = next(c for c in load_cases(golden_dir) if c.name == "pipeline_vae_3d")
    assert len(case.meta["info"]["unet_clips_per_step"]) == 2
    one = golden_pipeline.run(case, Context(backend=TorchBackend(), unet_batch=1))
    both = golden_pipeline.run(case, Context(backend=TorchBackend(), unet_batch=2))
    for name in ("latents", "video"):
        # Not bit for bit on CPU fp32: MKL/oneDNN pick GEMM/conv blocking by problem size, so a
        # batch of 4 sums in another order than two of 2 (measured: 4e-6 on one U-Net call).
        # The bound is 10x under the golden tolerances (latents 1.45e-3, video 5e-4).
        torch.testing.assert_close(both[name], one[name], rtol=0, atol=5e-5)
        r = compare(case, name, both[name])
        assert r.passed, r.line()
