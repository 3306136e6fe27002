"""Temporal VAE decoders of Upscale-A-Video (vae_3d and vae_video)."""

from .config import VAEConfig
from .model import DECODER_PREFIXES, ENCODER_PREFIXES, VideoVAEDecoder, decoder_state_dict

__all__ = ["VAEConfig", "VideoVAEDecoder", "DECODER_PREFIXES", "ENCODER_PREFIXES", "decoder_state_dict"]
