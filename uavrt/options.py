"""Run settings by name: the CLI's long option names (snake_case) -> a validated RunConfig.

One table for every caller that takes settings as names (the command line, the job server's
`settings` JSON), so a setting means the same everywhere and is validated by the same frozen
configs.
"""

from __future__ import annotations

from typing import Any, Mapping

from .config import (ClipConfig, DecodeConfig, PropagationConfig, RunConfig, SamplerConfig, TileConfig,
                     WindowConfig)
from .errors import ConfigError

# option name -> (config section, field); section None = a RunConfig field
OPTIONS = {
    "steps": ("sampler", "steps"),
    "guidance": ("sampler", "guidance_scale"),
    "noise_level": ("sampler", "noise_level"),
    "propagation_steps": ("sampler", "propagation_steps"),
    "prompt": ("sampler", "prompt"),
    "added_prompt": ("sampler", "added_prompt"),
    "negative_prompt": ("sampler", "negative_prompt"),
    "seed": ("sampler", "seed"),
    "propagator": ("propagation", "propagator"),
    "fix_flow_resize": ("propagation", "fix_flow_resize"),
    "clip_merge": ("clips", "merge"),
    "tile": ("tiles", "size"),
    "tile_overlap": ("tiles", "overlap"),
    "tile_mode": ("tiles", "mode"),
    "window": ("window", "frames"),
    "window_overlap": ("window", "overlap"),
    "color_fix": ("decode", "color_fix"),
    "unet_batch": (None, "unet_batch"),
}
OPTION_NAMES = tuple(OPTIONS)

_SECTIONS = {"sampler": SamplerConfig, "propagation": PropagationConfig, "clips": ClipConfig, "tiles": TileConfig,
             "window": WindowConfig, "decode": DecodeConfig}


def run_config(values: Mapping[str, Any], base: RunConfig | None = None) -> RunConfig:
    """A RunConfig from `values` {option name: value} over `base` (default: release defaults).

    Unknown names are refused naming them; values are checked by the configs themselves.
    """
    if not isinstance(values, Mapping):
        raise ConfigError("settings", type(values).__name__, "a mapping of option names to values")
    unknown = sorted(set(values) - set(OPTIONS))
    if unknown:
        raise ConfigError("settings", unknown[0], "one of " + ", ".join(OPTION_NAMES))
    base = base or RunConfig()
    sections: dict = {name: {} for name in _SECTIONS}
    top: dict = {}
    for name, value in values.items():
        section, fld = OPTIONS[name]
        if name == "propagation_steps" and isinstance(value, list):
            value = tuple(value)
        if name == "color_fix" and isinstance(value, str):
            value = value.lower()
        (top if section is None else sections[section])[fld] = value
    import dataclasses
    parts = {name: dataclasses.replace(getattr(base, name), **fields) if fields else getattr(base, name)
             for name, fields in sections.items()}
    return dataclasses.replace(base, **parts, **top)
