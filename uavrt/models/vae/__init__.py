"""Temporal VAE decoders of Upscale-A-Video (vae_3d and vae_video)."""

from .config import VAEConfig
from .model import DECODER_PREFIXES, ENCODER_PREFIXES, VideoVAEDecoder, decoder_state_dict

__all__ = ["DECODER_PREFIXES", "ENCODER_PREFIXES", "VAEConfig", "VideoVAEDecoder", "decoder_state_dict"]
