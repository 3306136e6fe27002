"""Golden cases of kind "vae" (vae3d_decode, vaevideo_decode): `vae.decode(z, img, w_lr).sample`.

z is already divided by the scaling factor; vae_3d ignores img (the official Decoder only reads
it when condition_img is set), so only vae_video receives low_res/w_lr.
"""

from __future__ import annotations

import torch

from ..models.vae import VideoVAEDecoder


def run(case, ctx) -> dict:
    model = VideoVAEDecoder.from_config(case.meta["config"])
    model.load_state_dict(case.weights(), strict=True)  # the file holds post_quant_conv + decoder only
    runner = ctx.backend.from_module(model.spec, model)
    inputs = {"latents": case.input("z")}
    if model.variant == "vae_video":
        inputs["low_res"] = case.input("img")
        inputs["w_lr"] = torch.tensor(float(case.meta.get("args", {}).get("w_lr", 1.0)))
    video = runner(**inputs)["video"]  # [B, 3, T, 4h, 4w], unclamped
    return {"sample": video, "sample_clamped": video.clamp(-1, 1)}
