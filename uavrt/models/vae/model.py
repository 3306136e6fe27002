"""`VideoVAEDecoder`: the decoding half of the official `AutoencoderKLVideo`.

Two release variants share this class, selected by the config:
- vae_3d    (`vae_3d_config.json`):    forward(latents)
- vae_video (`vae_video_config.json`): forward(latents, low_res, w_lr); SFT-conditioned on the
  clean low-res video, `_plus` ResNets with a 3x3x3 temporal conv everywhere.
latents [B, 4, T, h, w] are ALREADY divided by the scaling factor (0.08333); the output video
[B, 3, T, 4h, 4w] is not clamped. GroupNorm statistics span the T frames of the call, so the
result depends on how the caller chunks time (the release decodes 3 frames at a time).
The official tiled_decode is deliberately not reproduced (broken upstream; the runtime tiles in
latent space itself).
"""

from __future__ import annotations

import torch
from torch import nn

from ...errors import InputError
from ...spec import VAE_3D, VAE_VIDEO, NetworkSpec
from .config import VAEConfig
from .decoder import LOW_RES_CHANNELS, Decoder
from .ops import channels_last, channels_last_weights_, to_frames, to_video

# State-dict prefixes of a release checkpoint (vae_3d.bin / vae_video.bin hold the encoder too).
DECODER_PREFIXES = ("post_quant_conv.", "decoder.")
ENCODER_PREFIXES = ("encoder.", "quant_conv.")


def decoder_state_dict(state_dict: dict) -> dict:
    """The entries of a full AutoencoderKLVideo checkpoint that this decoder loads."""
    return {k: v for k, v in state_dict.items() if k.startswith(DECODER_PREFIXES)}


class VideoVAEDecoder(nn.Module):
    # "_class_name" values a release config may carry (vae_3d_config.json says AutoencoderKL3D,
    # but inference builds both files with AutoencoderKLVideo).
    OFFICIAL_CLASS_NAMES = ("AutoencoderKLVideo", "AutoencoderKL3D")

    def __init__(self, config: VAEConfig):
        super().__init__()
        config.validate()
        self.config = config
        self.decoder = Decoder(config)
        self.post_quant_conv = nn.Conv2d(config.latent_channels, config.latent_channels, 1)
        channels_last_weights_(self)  # activations run channels-last (ops.py says why)

    @classmethod
    def from_config(cls, config: dict) -> VideoVAEDecoder:
        return cls(VAEConfig.from_dict(config))

    @property
    def variant(self) -> str:
        return "vae_video" if self.config.condition_img else "vae_3d"

    @property
    def spec(self) -> NetworkSpec:
        return VAE_VIDEO if self.config.condition_img else VAE_3D

    @property
    def scaling_factor(self) -> float:
        return self.config.scaling_factor

    def forward(self, latents: torch.Tensor, low_res: torch.Tensor | None = None, w_lr=1.0) -> torch.Tensor:
        # latents: [B, 4, T, h, w] (already / scaling_factor); low_res: [B, 3, T, h, w] in [-1, 1]
        self._check_inputs(latents, low_res)
        frames = latents.shape[2]
        z = self.post_quant_conv(channels_last(to_frames(latents)))  # [B*T, 4, h, w]
        lr = channels_last(to_frames(low_res)) if self.config.condition_img else None
        x = self.decoder(z, frames, lr, w_lr)  # [B*T, 3, 4h, 4w]
        return to_video(x, frames).contiguous()  # [B, 3, T, 4h, 4w]

    def _check_inputs(self, latents, low_res) -> None:
        # Shape-only checks: static under torch.export (ranks, channel counts) or equalities of
        # dims the export spec already declares shared (B, T, H, W).
        name = self.variant
        want = (self.config.latent_channels,)
        if latents.dim() != 5 or latents.shape[1] != want[0]:
            raise InputError(f"{name}.latents: shape {tuple(latents.shape)} is not allowed: expected "
                             f"[B, {want[0]}, T, h, w] (latents already divided by the scaling factor)")
        if not self.config.condition_img:
            if low_res is not None:
                raise InputError(f"{name}.low_res: given, but vae_3d takes no low-res condition; "
                                 "only vae_video (condition_img=true) does")
            return
        if low_res is None:
            raise InputError(f"{name}.low_res: missing; vae_video needs the clean low-res video "
                             f"[B, 3, T, h, w] in [-1, 1] (same B, T, h, w as latents)")
        b, _, t, h, w = latents.shape
        if low_res.dim() != 5 or tuple(low_res.shape) != (b, LOW_RES_CHANNELS, t, h, w):
            raise InputError(f"{name}.low_res: shape {tuple(low_res.shape)} is not allowed: expected "
                             f"{(b, LOW_RES_CHANNELS, t, h, w)} (B, T, h, w of latents {tuple(latents.shape)})")
