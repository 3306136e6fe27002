"""Golden kind `pipeline`: the whole denoising + decoding through the real pipeline code."""

from __future__ import annotations

import torch

from .. import spec as specs
from ..config import PropagationConfig, RunConfig, SamplerConfig
from ..models.loading import load_into
from ..models.release import build_network
from ..runtime import pipeline as pl
from ..runtime.model import Model
from ..runtime.plan import plan_window


def _runner(case, ctx, network, spec, cfg_key, weights_key):
    module = build_network(network, case.meta[cfg_key])
    load_into(module, case.weights(weights_key), f"{case.name} {network}")
    return ctx.backend.from_module(spec, module.eval())


def run(case, ctx):
    a = case.meta["args"]
    vae_cfg = case.meta["vae_config"]
    vae_name = "vae_video" if vae_cfg.get("condition_img") else "vae_3d"
    prop = a.get("propagation_call", {})
    cfg = RunConfig(
        sampler=SamplerConfig(steps=a["num_inference_steps"], guidance_scale=a["guidance_scale"],
                              noise_level=a["noise_level"], propagation_steps=tuple(a.get("propagation_steps", ()))),
        propagation=PropagationConfig(propagator=ctx.propagator,
                                      **{k: prop[k] for k in ("interpolation", "mode", "fuse_scale", "alpha1", "alpha2")
                                         if k in prop}),
        unet_batch=getattr(ctx, "unet_batch", 1),
    )
    device = getattr(ctx.backend, "device", torch.device("cpu"))
    model = Model.assemble(
        unet=_runner(case, ctx, "unet", specs.UNET, "unet_config", "unet_weights"),
        vae=_runner(case, ctx, vae_name, specs.get_spec(vae_name), "vae_config", "vae_weights"),
        raft=None, scheduler_config=case.meta["scheduler_config"],
        low_res_scheduler_config=case.meta["low_res_scheduler_config"], vae_config=vae_cfg, device=device)
    t = lambda n: case.input(n).to(model.device)  # noqa: E731
    cond = pl.Conditioning(t("prompt_embeds"), t("negative_prompt_embeds") if cfg.sampler.guided else None)
    flows = (t("flows_forward"), t("flows_backward"))
    low_res = t("video")
    T, h, w = low_res.shape[2:]
    plan = plan_window(cfg, model.ddim, T, h, w, model.device, tile_mode="none")
    latents = pl.denoise(model, cfg, plan, cond, low_res, t("latents"), t("low_res_noise"), flows)
    video = pl.decode(model, cfg, plan, latents, low_res)
    return {"latents": latents, "video": video}
