"""UNetVideoModel: the SD x4 upscaler U-Net inflated to video (Upscale-A-Video).

Data path (shapes for B clips of T frames, latent H x W):
  cat(sample [B,4,T,H,W], low_res [B,3,T,H,W]) -> conv_in -> down blocks (+ temporal module
  after each) -> mid block (+ temporal module) -> up blocks with skips (+ temporal module)
  -> GroupNorm, SiLU, conv_out -> noise_pred [B,4,T,H,W] (v-prediction in the release).
The time embedding (sinusoid of the timestep -> MLP) plus the noise-level embedding
(`class_embedding[class_labels]`) conditions every ResNet.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ...errors import InputError
from .blocks import DownBlock, MidBlock, NoTemporalModule, TemporalModule, UpBlock
from .config import UNetConfig
from .embeddings import (
    RotaryEmbedding,
    TimestepEmbedding,
    sinusoidal_embedding,
    temporal_positions,
)
from .resnet import FrameConv2d


class UNetVideoModel(nn.Module):
    def __init__(self, config: UNetConfig):
        super().__init__()
        config.validate()
        self.config = cfg = config
        ch = cfg.block_out_channels
        temb = cfg.time_embed_dim
        n = len(ch)
        norm = {"eps": cfg.norm_eps, "groups": cfg.norm_num_groups}

        self.conv_in = FrameConv2d(cfg.in_channels, ch[0], 3, padding=1)
        self.time_embedding = TimestepEmbedding(ch[0], temb)
        self.class_embedding = nn.Embedding(cfg.num_class_embeds, temb)  # noise level -> embedding
        # one rotary module shared by every temporal attention (and listed at the top level)
        self.temporal_rotary_emb = RotaryEmbedding(32)
        rot = self.temporal_rotary_emb

        self.down_blocks = nn.ModuleList()
        self.down_temp_blocks = nn.ModuleList()
        for i, kind in enumerate(cfg.down_block_types):
            attn = kind == "CrossAttnDownBlock3D"
            self.down_blocks.append(DownBlock(
                ch[max(i - 1, 0)], ch[i], temb, cfg.layers_per_block, add_downsample=i < n - 1,
                heads=cfg.attention_head_dim[i] if attn else None, context_dim=cfg.cross_attention_dim,
                only_cross_attention=cfg.only_cross_attention[i], rotary=rot,
                downsample_padding=cfg.downsample_padding, **norm))
            self.down_temp_blocks.append(TemporalModule(ch[i], temb) if i in cfg.down_temporal_idx
                                         else NoTemporalModule())

        self.mid_block = MidBlock(ch[-1], temb, heads=cfg.attention_head_dim[-1], context_dim=cfg.cross_attention_dim,
                                  rotary=rot, output_scale_factor=cfg.mid_block_scale_factor, **norm)
        self.mid_temp_block = TemporalModule(ch[-1], temb) if cfg.mid_temporal else NoTemporalModule()

        rch = list(reversed(ch))
        rheads = list(reversed(cfg.attention_head_dim))
        rcross = list(reversed(cfg.only_cross_attention))
        self.up_blocks = nn.ModuleList()
        self.up_temp_blocks = nn.ModuleList()
        for i, kind in enumerate(cfg.up_block_types):
            attn = kind == "CrossAttnUpBlock3D"
            self.up_blocks.append(UpBlock(
                rch[min(i + 1, n - 1)], rch[max(i - 1, 0)], rch[i], temb, cfg.layers_per_block + 1,
                add_upsample=i < n - 1, heads=rheads[i] if attn else None, context_dim=cfg.cross_attention_dim,
                only_cross_attention=rcross[i], rotary=rot, **norm))
            self.up_temp_blocks.append(TemporalModule(rch[i], temb) if i in cfg.up_temporal_idx
                                       else NoTemporalModule())

        self.conv_norm_out = nn.GroupNorm(cfg.norm_num_groups, ch[0], eps=cfg.norm_eps)
        self.conv_out = FrameConv2d(ch[0], cfg.out_channels, 3, padding=1)

    @classmethod
    def from_config(cls, config: dict) -> UNetVideoModel:
        """Build from the release's JSON config dict (`configs/unet_video_config.json` keys)."""
        return cls(UNetConfig.from_dict(config))

    # --- phases ------------------------------------------------------------------------------
    def embed_time(self, timestep: torch.Tensor, class_labels: torch.Tensor, batch: int, dtype) -> torch.Tensor:
        """timestep: 0-d or [B] int; class_labels: [B] or [1] noise levels -> emb [B, 4*C0]."""
        t = timestep.reshape(-1).expand(batch)
        t_emb = sinusoidal_embedding(t, self.config.block_out_channels[0], self.config.flip_sin_to_cos,
                                     self.config.freq_shift).to(dtype)
        emb = self.time_embedding(t_emb)
        # The reference raises when a noise level exceeds max_noise_level (350); that is a check
        # on tensor values, so it belongs to the caller (the pipeline validates noise_level).
        return emb + self.class_embedding(class_labels.reshape(-1)).to(dtype)

    def forward(self, sample: torch.Tensor, timestep: torch.Tensor, low_res: torch.Tensor,
                encoder_hidden_states: torch.Tensor, class_labels: torch.Tensor) -> torch.Tensor:
        """sample [B,4,T,H,W], timestep 0-d/[B] int64, low_res [B,3,T,H,W],
        encoder_hidden_states [B,L,C], class_labels [B] int64 -> noise_pred [B,4,T,H,W]."""
        if not torch.compiler.is_compiling():
            self._check_inputs(sample, low_res, encoder_hidden_states, class_labels)
        b, _, t = sample.shape[:3]
        dtype = self.conv_in.weight.dtype
        x = torch.cat([sample, low_res], dim=1).to(dtype)  # [B, 7, T, H, W]
        text = encoder_hidden_states.to(dtype)
        if self.config.center_input_sample:
            x = 2 * x - 1.0
        emb = self.embed_time(timestep, class_labels, b, dtype)
        pos = temporal_positions(self.temporal_rotary_emb, t, dtype)

        # down
        x = self.conv_in(x)
        skips = [x]
        for block, temporal in zip(self.down_blocks, self.down_temp_blocks):
            x, block_skips = block(x, emb, text, pos)
            skips += block_skips
            x = temporal(x, emb)

        # mid
        x = self.mid_block(x, emb, text, pos)
        x = self.mid_temp_block(x, emb)

        # up: each block takes as many skips as it has ResNets; it upsamples to the size of the
        # skip the NEXT block starts with (forced size for H, W not multiples of 8)
        for block, temporal in zip(self.up_blocks, self.up_temp_blocks):
            k = len(block.resnets)
            block_skips, skips = skips[-k:], skips[:-k]
            size = skips[-1].shape[2:] if len(block.upsamplers) else None
            x = block(x, block_skips, emb, text, pos, size)
            x = temporal(x, emb)

        x = self.conv_out(F.silu(self.conv_norm_out(x)))
        return x

    def _check_inputs(self, sample, low_res, encoder_hidden_states, class_labels) -> None:
        cfg = self.config
        want_low = cfg.in_channels - 4
        if sample.dim() != 5 or sample.shape[1] != 4:
            raise InputError(f"unet.sample: shape {tuple(sample.shape)} is not allowed: expected [B, 4, T, H, W]")
        b, _, t, h, w = sample.shape
        if tuple(low_res.shape) != (b, want_low, t, h, w):
            raise InputError(f"unet.low_res: shape {tuple(low_res.shape)} is not allowed: expected "
                             f"[B, {want_low}, T, H, W] = {(b, want_low, t, h, w)} to match sample")
        if (encoder_hidden_states.dim() != 3 or encoder_hidden_states.shape[0] != b
                or encoder_hidden_states.shape[2] != cfg.cross_attention_dim):
            raise InputError(f"unet.encoder_hidden_states: shape {tuple(encoder_hidden_states.shape)} is not "
                             f"allowed: expected [B={b}, L, {cfg.cross_attention_dim}]")
        if class_labels.dim() != 1 or class_labels.shape[0] not in (1, b):
            raise InputError(f"unet.class_labels: shape {tuple(class_labels.shape)} is not allowed: "
                             f"expected [B={b}] (or [1])")
