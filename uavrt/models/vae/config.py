"""Configuration of the temporal VAE decoders (the release's `vae_*_config.json`).

Only the decoder half of `AutoencoderKLVideo` is built: the pipeline never encodes. Encoder-only
keys of the release config are accepted and ignored so the release file can be passed as is.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from ...errors import ConfigError

UP_BLOCK_TYPES = ("UpDecoderBlock3D", "UpDecoderBlock3D_plus")
ACT_FNS = ("silu", "swish")  # both are SiLU in the official ResnetBlock3D
# Keys of the release config that only concern the encoder (never built here).
ENCODER_ONLY_KEYS = ("in_channels", "down_block_types", "sample_size")
# Group count hard-coded by the official condition branch (ResnetBlock3D default `groups=32`),
# independent of norm_num_groups.
CONDITION_GROUPS = 32


@dataclass(frozen=True)
class VAEConfig:
    latent_channels: int = 4
    out_channels: int = 3
    block_out_channels: tuple = (128, 256, 512)
    layers_per_block: int = 2
    norm_num_groups: int = 32
    act_fn: str = "silu"
    up_block_types: tuple = ("UpDecoderBlock3D",) * 3
    condition_img: bool = False
    condition_channels: int = 128
    use_temporal_block: bool = False  # official code creates empty containers only: no effect
    scaling_factor: float = 0.08333  # kept for the pipeline; forward() expects latents / scaling_factor

    @classmethod
    def from_dict(cls, config: dict) -> VAEConfig:
        names = {f.name for f in fields(cls)}
        kwargs = {}
        for key, value in config.items():
            if key.startswith("_") or key in ENCODER_ONLY_KEYS:
                continue
            if key not in names:
                raise ConfigError(f"vae config key {key!r}", value,
                                  "one of " + ", ".join(sorted(names | set(ENCODER_ONLY_KEYS))))
            kwargs[key] = tuple(value) if isinstance(value, list) else value
        cfg = cls(**kwargs)
        cfg.validate()
        return cfg

    def validate(self) -> None:
        if self.act_fn not in ACT_FNS:
            raise ConfigError("act_fn", self.act_fn, "one of " + ", ".join(map(repr, ACT_FNS)))
        for t in self.up_block_types:
            if t not in UP_BLOCK_TYPES:
                raise ConfigError("up_block_types", list(self.up_block_types),
                                  "a list of " + " / ".join(UP_BLOCK_TYPES))
        if not self.block_out_channels or len(self.up_block_types) != len(self.block_out_channels):
            raise ConfigError("up_block_types", list(self.up_block_types),
                              f"one entry per block_out_channels entry ({len(self.block_out_channels)})")
        for c in self.block_out_channels:
            if c <= 0 or c % self.norm_num_groups:
                raise ConfigError("block_out_channels", list(self.block_out_channels),
                                  f"positive multiples of norm_num_groups={self.norm_num_groups}")
        if self.layers_per_block < 1:
            raise ConfigError("layers_per_block", self.layers_per_block, "an integer >= 1")
        if self.latent_channels < 1 or self.out_channels < 1:
            raise ConfigError("latent_channels/out_channels", (self.latent_channels, self.out_channels),
                              "positive integers")
        if self.condition_img and (self.condition_channels <= 0 or self.condition_channels % CONDITION_GROUPS
                                   or self.block_out_channels[-1] % CONDITION_GROUPS):
            raise ConfigError("condition_channels", self.condition_channels,
                              f"a positive multiple of {CONDITION_GROUPS} (and block_out_channels[-1] too): "
                              "the condition branch uses 32 groups")
        if not self.scaling_factor > 0:
            raise ConfigError("scaling_factor", self.scaling_factor, "a positive number")

    @property
    def mid_block_plus(self) -> bool:
        # Official rule (vae_video.Decoder): the mid block is the `_plus` kind unless the FIRST up
        # block is the plain "UpDecoderBlock3D".
        return self.up_block_types[0] != "UpDecoderBlock3D"
