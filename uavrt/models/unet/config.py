"""Configuration of the temporal U-Net, parsed from the release's `unet_video_config.json`.

The release config uses the diffusers key names (and diffusers' misnomer `attention_head_dim`,
which is the NUMBER of heads per block). Only the architecture this release uses is supported:
any key with another value raises a ConfigError naming the key, the value and what is allowed,
instead of silently building a different network.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from ...errors import ConfigError, check_choice

DOWN_BLOCK_TYPES = ("DownBlock3D", "CrossAttnDownBlock3D")
UP_BLOCK_TYPES = ("UpBlock3D", "CrossAttnUpBlock3D")

# keys of the official config that select features this release never uses: accepted only
# with the value the release has (the reference code's default).
_FIXED = {
    "act_fn": ("silu",),
    "use_linear_projection": (True,),
    "dual_cross_attention": (False,),
    "class_embed_type": (None,),
    "resnet_time_scale_shift": ("default",),
    "upcast_attention": (False,),
    "use_first_frame": (False,),
    "use_relative_position": (False,),
    "mid_block_type": ("UNetMidBlock3DCrossAttn",),
    "downsample_padding": (1,),
}


@dataclass(frozen=True)
class UNetConfig:
    # defaults are the reference UNetVideoModel.__init__ defaults
    block_out_channels: tuple = (256, 512, 512, 1024)
    down_block_types: tuple = ("DownBlock3D", "CrossAttnDownBlock3D", "CrossAttnDownBlock3D", "CrossAttnDownBlock3D")
    up_block_types: tuple = ("CrossAttnUpBlock3D", "CrossAttnUpBlock3D", "CrossAttnUpBlock3D", "UpBlock3D")
    attention_head_dim: tuple = (8, 8, 8, 8)  # number of heads per block (diffusers' name)
    only_cross_attention: tuple = (True, True, True, False)
    in_channels: int = 7
    out_channels: int = 4
    layers_per_block: int = 2
    norm_num_groups: int = 32
    norm_eps: float = 1e-5
    cross_attention_dim: int = 1024
    num_class_embeds: int = 1000
    max_noise_level: int = 350
    flip_sin_to_cos: bool = True
    freq_shift: float = 0
    center_input_sample: bool = False
    mid_block_scale_factor: float = 1.0
    sample_size: int | None = None
    down_temporal_idx: tuple = (0, 1, 2)
    mid_temporal: bool = False
    up_temporal_idx: tuple = (1, 2, 3)
    # the rest are accepted with one value only (see _FIXED)
    act_fn: str = "silu"
    use_linear_projection: bool = True
    dual_cross_attention: bool = False
    class_embed_type: str | None = None
    resnet_time_scale_shift: str = "default"
    upcast_attention: bool = False
    use_first_frame: bool = False
    use_relative_position: bool = False
    mid_block_type: str = "UNetMidBlock3DCrossAttn"
    downsample_padding: int = 1

    @property
    def time_embed_dim(self) -> int:
        return 4 * self.block_out_channels[0]

    @classmethod
    def from_dict(cls, config: dict) -> UNetConfig:
        """Parse the release JSON dict (keys starting with '_' are metadata and ignored)."""
        known = {f.name for f in fields(cls)} | {"temporal_module_config"}
        kw = {}
        for key, value in config.items():
            if key.startswith("_"):
                continue
            if key not in known:
                raise ConfigError(f"unet config key {key!r}", value, "one of the UNetVideoModel keys: "
                                  + ", ".join(sorted(known)))
            kw[key] = value
        tmc = kw.pop("temporal_module_config", None) or {}
        blocks = tuple(tmc.get("attention_block_types", ("", "")))
        extra = set(tmc) - {"attention_block_types"}
        if blocks != ("", "") or extra:
            # the release's temporal modules have no attention (["", ""]): the attention variant
            # needs modules (AdaLayerNorm, deformable warping) this runtime does not implement
            raise ConfigError("temporal_module_config", tmc, '{"attention_block_types": ["", ""]}')
        n = len(kw.get("down_block_types", cls.down_block_types))
        for key in ("attention_head_dim", "only_cross_attention"):
            if key in kw and not isinstance(kw[key], (list, tuple)):
                kw[key] = (kw[key],) * n  # an int/bool means "the same for every block"
        for key in ("block_out_channels", "down_block_types", "up_block_types", "attention_head_dim",
                    "only_cross_attention", "down_temporal_idx", "up_temporal_idx"):
            if key in kw:
                kw[key] = tuple(kw[key])
        cfg = cls(**kw)
        cfg.validate()
        return cfg

    def validate(self) -> None:
        for key, allowed in _FIXED.items():
            check_choice(key, getattr(self, key), allowed)
        n = len(self.block_out_channels)
        for key in ("down_block_types", "up_block_types", "attention_head_dim", "only_cross_attention"):
            if len(getattr(self, key)) != n:
                raise ConfigError(key, getattr(self, key), f"{n} entries (one per block_out_channels entry)")
        for t in self.down_block_types:
            check_choice("down_block_types[]", t, DOWN_BLOCK_TYPES)
        for t in self.up_block_types:
            check_choice("up_block_types[]", t, UP_BLOCK_TYPES)
        for c in self.block_out_channels:
            if c % self.norm_num_groups or c % 32:
                raise ConfigError("block_out_channels", self.block_out_channels,
                                  f"multiples of norm_num_groups={self.norm_num_groups} and of 32 "
                                  "(temporal GroupNorms use 32 groups)")
        # (channels, heads) of every stage with transformers: cross-attn down block i, the up
        # block mirroring it, and the mid block (last width, last head count)
        n_last = n - 1
        stages = [i for i in range(n) if self.down_block_types[i].startswith("CrossAttn")
                  or self.up_block_types[n_last - i].startswith("CrossAttn")] + [n_last]
        for i in stages:
            c, heads = self.block_out_channels[i], self.attention_head_dim[i]
            if heads < 1 or c % heads or c // heads < 32:
                raise ConfigError("attention_head_dim", self.attention_head_dim,
                                  f"head counts splitting block {i}'s {c} channels into heads of >= 32 "
                                  "features (the temporal rotary embedding rotates 32 features per head)")
        for key in ("down_temporal_idx", "up_temporal_idx"):
            for i in getattr(self, key):
                if not 0 <= i < n:
                    raise ConfigError(key, getattr(self, key), f"block indices in [0, {n - 1}]")
