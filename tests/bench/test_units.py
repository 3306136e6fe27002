"""Harness pieces: timing proxies, scenarios, scaling fits, memory sampling."""

import time

import pytest
import torch

from uavrt.bench.clock import StageClock, TimedPropagate, TimedRunner
from uavrt.bench.memory import PeakMemory
from uavrt.bench.scaling import linear_fit, scaling_scenarios, summarize
from uavrt.bench.scenario import Scenario, default_propagation_steps, grid, parse_size
from uavrt.errors import ConfigError
from uavrt.spec import UNET
from uavrt.runtime.torch_backend import TorchBackend


class _Sleepy(torch.nn.Module):
    def forward(self, sample, timestep, low_res, encoder_hidden_states, class_labels):
        time.sleep(0.02)
        return sample * 2


def test_timed_runner_is_a_transparent_proxy():
    inner = TorchBackend().from_module(UNET, _Sleepy())
    clock = StageClock()
    runner = TimedRunner(inner, clock, "unet")
    assert runner.spec is UNET and runner.device == inner.device and runner.owns_outputs is False
    x = UNET.sample_inputs({"B": 2, "T": 3, "H": 8, "W": 8, "L": 5, "C": 4})
    out = runner(**x)
    torch.testing.assert_close(out["noise_pred"], x["sample"] * 2)
    runner(**x)
    assert clock.calls["unet"] == 2 and 0.04 <= clock.seconds["unet"] < 1.0
    assert clock.unet_shapes == [(2, 3, 8, 8, 5)] * 2


def test_timed_propagate_records_shape_and_forwards_options():
    seen = {}

    def prop(x, ff, fb, **kw):
        seen.update(kw)
        return x + 1

    clock = StageClock()
    x = torch.zeros(1, 4, 3, 2, 2, dtype=torch.float16)
    y = TimedPropagate(prop, clock)(x, None, None, mode="fuse", alpha1=0.1)
    assert torch.equal(y, x + 1) and seen == {"mode": "fuse", "alpha1": 0.1}
    assert clock.prop_shapes == [((1, 4, 3, 2, 2), torch.float16)] and clock.calls["propagation"] == 1


def test_clock_counts_time_of_failing_calls():
    clock = StageClock()
    with pytest.raises(ZeroDivisionError):
        clock.timed("unet", lambda: 1 / 0)
    assert clock.calls["unet"] == 1


def test_scenarios():
    assert default_propagation_steps(30) == (24, 26, 28)
    assert default_propagation_steps(2) == (0,) and default_propagation_steps(1) == (0,)
    assert parse_size("64x48") == (48, 64) and parse_size("40") == (40, 40)
    with pytest.raises(ConfigError, match="size"):
        parse_size("big")
    with pytest.raises(ConfigError, match="size with propagation"):
        Scenario(height=64, width=64, propagation_steps=(0,))
    with pytest.raises(ConfigError, match="steps"):
        Scenario(steps=0)
    with pytest.raises(ConfigError, match="io"):
        Scenario(io="disk")
    s = grid(sizes=[(128, 128)], frames=[8], steps=[30], guidance=[6.0, 1.0], propagation=["off", "on"],
             tiles=[None], precisions=["fp32"])
    assert [(x.guided, x.propagation_steps) for x in s] == [(True, ()), (True, (24, 26, 28)), (False, ()),
                                                             (False, (24, 26, 28))]
    cfg = s[1].run_config()
    assert cfg.sampler.propagation_steps == (24, 26, 28) and cfg.tiles.overlap == 64
    assert Scenario(tile=64).run_config().tiles.overlap == 16  # capped for small tiles
    sweeps = scaling_scenarios(Scenario(), [8, 16], [(16, 16), (64, 32)])
    assert [(k, v.frames, v.height, v.width) for k, v in sweeps] == [
        ("frames", 8, 32, 32), ("frames", 16, 32, 32), ("resolution", 16, 16, 16), ("resolution", 16, 64, 32)]


def test_linear_fit_and_summary():
    f = linear_fit([8, 16, 32], [1.5, 2.5, 4.5])
    assert f["slope"] == pytest.approx(0.125) and f["intercept"] == pytest.approx(0.5) and f["r2"] == pytest.approx(1)
    rows = [{"status": "ok", "sweep": "frames", "backend": "torch", "precision": "fp32", "peak_gpu_mb": None,
             "scenario": {"frames": n, "height": 8, "width": 8}, "wall_s": {"median_s": 0.1 * n},
             "process_cpu_s": {"median_s": 0.2 * n}, "peak_host_mb": m} for n, m in ((10, 500.0), (40, 550.0))]
    s = summarize(rows)["torch fp32 / frames"]
    assert s["fit_wall_s"]["slope"] == pytest.approx(0.1) and s["peak_host_mb_ratio"] == pytest.approx(1.1)
    assert s["fit_cpu_s"]["slope"] == pytest.approx(0.2)


def test_peak_memory_sees_an_allocation():
    with PeakMemory("cpu") as idle:
        time.sleep(0.05)
    with PeakMemory("cpu") as busy:
        x = torch.ones(64 * 2**20 // 4)  # 64 MiB, touched
        time.sleep(0.05)
        del x
    r = busy.result()
    assert r["peak_host_mb"] >= idle.result()["peak_host_mb"] + 48
    assert r["peak_gpu_mb"] is None and r["peak_gpu_why"]
