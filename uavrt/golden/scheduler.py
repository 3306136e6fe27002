"""Golden kinds `scheduler` (DDIM, v-prediction) and `low_res_scheduler` (DDPM add_noise)."""

from __future__ import annotations

from ..models import schedulers as S


def _run_ddim(case) -> dict:
    cfg = S.DDIMConfig.from_config(case.meta["config"])
    args = case.meta["args"]
    n = args["num_inference_steps"]
    if float(args.get("eta", 0.0)) != 0.0:
        raise ValueError(f"eta={args['eta']} is not supported (the release runs eta 0)")
    acp = S.alphas_cumprod(cfg)
    timesteps = S.ddim_timesteps(cfg, n)
    out = {"timesteps": timesteps, "alphas_cumprod": acp}
    for i in args["step_indices"]:
        t = int(timesteps[i])
        t_prev = S.prev_timestep(cfg, t, n)
        v, x_t, v0 = case.input(f"model_output_{i}"), case.input(f"sample_{i}"), case.input(f"v0_{i}")
        out[f"x0_{i}"] = S.predict_x0(acp, t, x_t, v)
        # `v0_i` is the (stand-in for the propagated) x0 the release's step_vt receives
        out[f"prev_from_v0_{i}"] = S.step_from_x0(acp, t, t_prev, x_t, v, v0,
                                                  set_alpha_to_one=cfg.set_alpha_to_one)
        out[f"prev_step_{i}"] = S.ddim_step(acp, t, t_prev, x_t, v, set_alpha_to_one=cfg.set_alpha_to_one)
    return out


def _run_low_res(case) -> dict:
    cfg = S.LowResNoiseConfig.from_config(case.meta["config"])
    acp = S.alphas_cumprod(cfg)
    noisy = S.add_noise(acp, case.input("image"), case.input("noise"), int(case.meta["args"]["noise_level"]))
    return {"noisy": noisy, "alphas_cumprod": acp}


def run(case, ctx) -> dict:
    return _run_low_res(case) if case.kind == "low_res_scheduler" else _run_ddim(case)
