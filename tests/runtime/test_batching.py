"""Batched U-Net calls (runtime/batching.py): grouping, the memory budget, and exactness."""

from __future__ import annotations

import pytest
import torch

from uavrt.config import RunConfig, UnetBatchConfig
from uavrt.errors import ConfigError
from uavrt.runtime.batching import (batched_unet, clips_per_call, group_units, unet_sample_bytes)


def test_group_units_keeps_plan_order_and_splits_on_shape_and_size():
    a, b = (1, 4, 8, 16, 16), (1, 4, 8, 16, 12)
    assert group_units([a, a, a, b, b, a], 2) == [[0, 1], [2], [3, 4], [5]]
    assert group_units([a, a, a], 1) == [[0], [1], [2]]
    assert group_units([a, a, a], 8) == [[0, 1, 2]]
    assert group_units([], 3) == []
    with pytest.raises(ValueError):
        group_units([a], 0)


def test_clips_per_call_override_budget_and_floor():
    kw = dict(frames=8, h=32, w=32, guided=True, dtype_bytes=4)
    per_clip = 2 * unet_sample_bytes(8, 32, 32, 4)
    assert clips_per_call(3, 0, 10, **kw) == 3  # the override wins, budget ignored
    assert clips_per_call(30, 0, 10, **kw) == 10  # never more than the units of a step
    assert clips_per_call(None, 3 * per_clip + 1, 10, **kw) == 3
    assert clips_per_call(None, per_clip - 1, 10, **kw) == 1  # the release's call size always runs
    assert clips_per_call(None, 100 * per_clip, 4, **kw) == 4
    # without guidance a clip is one sample: twice as many fit
    assert clips_per_call(None, 3 * per_clip, 10, **{**kw, "guided": False}) == 6


def test_unet_batch_config_errors_name_the_parameter():
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ConfigError, match="unet_batch"):
            UnetBatchConfig(clips=bad)
    with pytest.raises(ConfigError, match="unet_budget_mb"):
        UnetBatchConfig(budget_mb=0)
    assert RunConfig().unet_batch == UnetBatchConfig()


class _RecordingUNet:
    """A strict stand-in for a U-Net Runner: records each call's inputs, returns a per-sample
    function of them (so a wrong stacking order changes the outputs)."""

    owns_outputs = True  # like TensorRT / CUDA graphs: outputs are overwritten by the next call

    def __init__(self):
        self.calls = []
        self._buf = None

    def __call__(self, *, sample, timestep, low_res, encoder_hidden_states, class_labels):
        assert sample.shape[0] == low_res.shape[0] == encoder_hidden_states.shape[0] == class_labels.shape[0]
        self.calls.append(sample.shape[0])
        out = sample * 2 + low_res[:, :1] + encoder_hidden_states.mean(dim=(1, 2))[:, None, None, None, None]
        self._buf = out  # returned as "its own buffer"
        return {"noise_pred": self._buf}


def test_batched_unet_stacks_guidance_pairs_in_order():
    torch.manual_seed(0)
    samples = [torch.randn(1, 4, 3, 5, 5) for _ in range(5)]
    low_res = [torch.randn(1, 3, 3, 5, 5) for _ in range(5)]
    cond, uncond = torch.randn(1, 7, 6), torch.randn(1, 7, 6)
    ref_unet, unet = _RecordingUNet(), _RecordingUNet()
    ref = batched_unet(ref_unet, samples, low_res, 500, 120, cond, uncond, 1, "cpu")
    got = batched_unet(unet, samples, low_res, 500, 120, cond, uncond, 2, "cpu")
    assert ref_unet.calls == [2] * 5 and unet.calls == [4, 4, 2]
    for r, g, s, lr in zip(ref, got, samples, low_res):
        assert g.shape == (2, 4, 3, 5, 5)
        assert torch.equal(r, g)
        # row 0 is the uncond branch, row 1 the cond branch (the release's pair order)
        for row, emb in enumerate((uncond, cond)):
            assert torch.equal(g[row], (s * 2 + lr[:, :1] + emb.mean())[0])


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
