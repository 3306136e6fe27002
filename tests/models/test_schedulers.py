"""DDIM / low-res noise schedulers: golden cases, the pipeline trace, properties, validation."""

import json

import pytest
import torch
from safetensors.torch import load_file

from uavrt.errors import ConfigError
from uavrt.golden import Context, load_cases, run_case
from uavrt.models import schedulers as S
from uavrt.runtime.torch_backend import TorchBackend

CASES = ["scheduler_ddim_sdx4", "scheduler_ddim_linear_variant", "low_res_scheduler"]


@pytest.mark.parametrize("name", CASES)
def test_golden(golden_dir, name):
    (case,) = load_cases(golden_dir, only=[name])
    results = run_case(case, Context(backend=TorchBackend()))
    print("\n".join(r.line() for r in results))
    assert results and all(r.passed for r in results), [r.line() for r in results if not r.passed]


def test_pipeline_trace_steps(golden_dir):
    """Every step of the official 6-step loop: x0 (step_v0), x_prev (step_vt) and low-res noising."""
    meta = json.loads((golden_dir / "pipeline_vae_3d.json").read_text())
    t = load_file(str(golden_dir / "pipeline_vae_3d.safetensors"))
    cfg = S.DDIMConfig.from_config(meta["scheduler_config"])
    acp, n = S.alphas_cumprod(cfg), meta["args"]["num_inference_steps"]
    timesteps = S.ddim_timesteps(cfg, n)
    for k in range(n):
        step = int(timesteps[k])
        assert step == int(t[f"trace.step{k}.timestep"])
        x_t, v = t[f"trace.step{k}.latents_in"], t[f"trace.step{k}.noise_pred_guided"]
        ref_x0 = t[f"trace.step{k}.x0"]
        torch.testing.assert_close(S.predict_x0(acp, step, x_t, v), ref_x0, rtol=0,
                                   atol=1e-5 * max(1.0, ref_x0.abs().max().item()))
        x0 = t.get(f"trace.step{k}.x0_propagated", ref_x0)  # step_vt gets the propagated x0
        ref_out = t[f"trace.step{k}.latents_out"]
        got = S.step_from_x0(acp, step, S.prev_timestep(cfg, step, n), x_t, v, x0)
        torch.testing.assert_close(got, ref_out, rtol=0, atol=1e-5 * max(1.0, ref_out.abs().max().item()))
    # the noisy low-res video fed to both guidance halves of the first UNet clip [0, 8)
    lcfg = S.LowResNoiseConfig.from_config(meta["low_res_scheduler_config"])
    noisy = S.add_noise(S.alphas_cumprod(lcfg), t["inputs.video"], t["inputs.low_res_noise"], meta["args"]["noise_level"])
    ref = t["trace.step0.unet_call0.low_res_in"]
    torch.testing.assert_close(torch.cat([noisy[:, :, :8]] * 2), ref, rtol=0, atol=1e-5 * max(1.0, ref.abs().max().item()))


def test_timesteps_leading_spacing():
    cfg = S.DDIMConfig()
    assert S.ddim_timesteps(cfg, 6).tolist() == [831, 665, 499, 333, 167, 1]
    ts = S.ddim_timesteps(cfg, 30)
    assert ts.dtype == torch.int64 and ts[0] == 958 and ts[-1] == 1 and bool((ts[:-1] - ts[1:] == 33).all())
    assert S.prev_timestep(cfg, 1, 30) == -32 and S.prev_timestep(cfg, 958, 30) == 925
    assert S.ddim_timesteps(cfg, 1000).tolist() == list(range(1000, 0, -1))


def test_v_prediction_identities():
    """With x_t = sqrt(a) x0 + sqrt(1-a) eps and v = sqrt(a) eps - sqrt(1-a) x0, predict_x0 recovers
    x0 and step_from_x0 lands on sqrt(a_prev) x0 + sqrt(1-a_prev) eps (float64)."""
    acp = S.alphas_cumprod(S.DDIMConfig()).double()
    g = torch.Generator().manual_seed(0)
    x0, eps = torch.randn(2, 4, 3, 5, 5, generator=g, dtype=torch.float64), torch.randn(2, 4, 3, 5, 5, generator=g, dtype=torch.float64)
    t, t_prev = 499, 466
    a, ap = acp[t], acp[t_prev]
    x_t = a.sqrt() * x0 + (1 - a).sqrt() * eps
    v = a.sqrt() * eps - (1 - a).sqrt() * x0
    torch.testing.assert_close(S.predict_x0(acp, t, x_t, v), x0)
    want = ap.sqrt() * x0 + (1 - ap).sqrt() * eps
    torch.testing.assert_close(S.ddim_step(acp, t, t_prev, x_t, v), want)
    # a replaced x0 moves only the x0 term; eps still comes from v and x_t
    other = torch.zeros_like(x0)
    torch.testing.assert_close(S.step_from_x0(acp, t, t_prev, x_t, v, other), (1 - ap).sqrt() * eps)


def test_final_step_alpha():
    acp = S.alphas_cumprod(S.DDIMConfig())
    x_t, v, x0 = torch.randn(3, 4), torch.randn(3, 4), torch.randn(3, 4)
    # set_alpha_to_one True: abar_prev = 1 -> x_prev is x0 itself
    torch.testing.assert_close(S.step_from_x0(acp, 1, -32, x_t, v, x0, set_alpha_to_one=True), x0, rtol=0, atol=0)
    # release (False): abar_prev = abar[0], the same as stepping to t_prev = 0
    torch.testing.assert_close(S.step_from_x0(acp, 1, -32, x_t, v, x0), S.step_from_x0(acp, 1, 0, x_t, v, x0), rtol=0, atol=0)


def test_add_noise_per_row_levels():
    acp = S.alphas_cumprod(S.LowResNoiseConfig())
    img, noise = torch.randn(2, 3, 2, 4, 4), torch.randn(2, 3, 2, 4, 4)
    both = S.add_noise(acp, img, noise, torch.tensor([0, 350]))
    for row, level in enumerate([0, 350]):
        torch.testing.assert_close(both[row:row + 1], S.add_noise(acp, img[row:row + 1], noise[row:row + 1], level))
    assert abs(acp[120].item() - 0.95954) < 1e-5  # README fact (abar[120] of the low-res schedule)


@pytest.mark.parametrize("config,param", [
    ({"prediction_type": "epsilon"}, "prediction_type"),
    ({"beta_schedule": "squaredcos_cap_v2"}, "beta_schedule"),
    ({"clip_sample": True}, "clip_sample"),
    ({"thresholding": True}, "thresholding"),
    ({"trained_betas": [0.1, 0.2]}, "trained_betas"),
])
def test_ddim_config_errors(config, param):
    base = {"beta_schedule": "scaled_linear", "prediction_type": "v_prediction", "clip_sample": False,
            "set_alpha_to_one": False, "steps_offset": 1}
    with pytest.raises(ConfigError) as e:
        S.DDIMConfig.from_config({**base, **config})
    assert e.value.param == param


def test_ddim_config_from_sparse_file_uses_diffusers_defaults():
    # a file without prediction_type means epsilon in diffusers, which this loop cannot run
    with pytest.raises(ConfigError) as e:
        S.DDIMConfig.from_config({"_class_name": "DDIMScheduler", "clip_sample": False})
    assert e.value.param == "prediction_type"
    cfg = S.DDIMConfig.from_config({"_class_name": "DDIMScheduler", "prediction_type": "v_prediction",
                                    "clip_sample": False, "timestep_spacing": "leading"})
    assert cfg.beta_schedule == "linear" and cfg.set_alpha_to_one and cfg.steps_offset == 0


@pytest.mark.parametrize("steps", [0, 1001, 2.5])
def test_num_steps_validated(steps):
    cfg = S.DDIMConfig()
    with pytest.raises(ConfigError) as e:
        S.ddim_timesteps(cfg, steps)
    assert e.value.param == "num_inference_steps" and e.value.value == steps


@pytest.mark.parametrize("level", [-1, 1000, torch.tensor([5, 1000])])
def test_noise_level_validated(level):
    acp = S.alphas_cumprod(S.LowResNoiseConfig())
    with pytest.raises(ConfigError) as e:
        S.add_noise(acp, torch.zeros(1, 3), torch.zeros(1, 3), level)
    assert e.value.param == "noise_level"
