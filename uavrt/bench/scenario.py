"""What one benchmark measures: a frozen Scenario per grid point, turned into a RunConfig."""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass

from ..config import (ClipConfig, PropagationConfig, RunConfig, SamplerConfig, TileConfig,
                      WindowConfig)
from ..errors import ConfigError, check_choice, check_range

RAFT_MIN_SIDE = 121  # RAFT runs at the size rounded up to a multiple of 8 and needs >= 128


def default_propagation_steps(steps: int) -> tuple:
    """The release's recommendation scaled to `steps`: 30 steps -> (24, 26, 28), i.e. every
    other step among the last six; short runs keep what exists (2 steps -> (0,), 1 step -> (0,))."""
    return tuple(s for s in (steps - 6, steps - 4, steps - 2) if s >= 0) or (steps - 1,)


@dataclass(frozen=True)
class Scenario:
    height: int = 32  # low-res input pixels
    width: int = 32
    frames: int = 16
    steps: int = 2
    guidance: float = 6.0  # <= 1: no classifier-free guidance (U-Net batch 1)
    propagation_steps: tuple = ()
    tile: int | None = None  # low-res pixels; None: the release's automatic rule
    precision: str = "fp32"
    window: int = 32
    window_overlap: int = 4
    vae: str = "3d"
    propagator: str = "torch"
    io: str = "file"  # "file": decode + encode a real video; "memory": frames in/out of RAM
    codec: str = "libx264"  # output encoder with io "file"
    seed: int = 10
    unet_batch: int | None = 1  # (tile, clip) pieces per U-Net call; None: from the memory budget

    def __post_init__(self):
        check_range("size (height)", self.height, 8, 4096, integer=True)
        check_range("size (width)", self.width, 8, 4096, integer=True)
        check_range("frames", self.frames, 1, 1_000_000, integer=True)
        check_choice("precision", self.precision, ("fp32", "fp16"))
        check_choice("io", self.io, ("file", "memory"))
        check_choice("vae", self.vae, ("3d", "video"))
        if self.propagation_steps and min(self.height, self.width) < RAFT_MIN_SIDE:
            raise ConfigError("size with propagation", f"{self.width}x{self.height}",
                              f"both sides >= {RAFT_MIN_SIDE} px when propagation is on (RAFT runs at "
                              "multiples of 8 and needs >= 128); use --propagation off or a larger --size")
        if self.io == "file" and (self.height % 2 or self.width % 2):
            raise ConfigError("size", f"{self.width}x{self.height}", "even sides with --io file (yuv420p input video)")
        self.run_config()  # validate every run parameter now, before any model is loaded

    @property
    def guided(self) -> bool:
        return self.guidance > 1.0

    def run_config(self) -> RunConfig:
        return RunConfig(
            sampler=SamplerConfig(steps=self.steps, guidance_scale=self.guidance,
                                  propagation_steps=self.propagation_steps, seed=self.seed),
            propagation=PropagationConfig(propagator=self.propagator),
            clips=ClipConfig(),
            # the release's 64 px overlap, capped for small benchmark tiles (it must be <= tile/2)
            tiles=TileConfig(size=self.tile, overlap=64 if self.tile is None else min(64, self.tile // 4)),
            window=WindowConfig(frames=self.window, overlap=self.window_overlap),
            unet_batch=self.unet_batch,
        )

    def to_json(self) -> dict:
        d = asdict(self)
        d["propagation_steps"] = list(self.propagation_steps)
        d["guided"] = self.guided
        return d

    def label(self) -> str:
        parts = [f"{self.width}x{self.height}", f"{self.frames}f", f"{self.steps}st",
                 f"cfg{self.guidance:g}" if self.guided else "nocfg"]
        if self.propagation_steps:
            parts.append("prop" + "/".join(map(str, self.propagation_steps)))
        if self.tile:
            parts.append(f"tile{self.tile}")
        if self.precision != "fp32":
            parts.append(self.precision)
        return " ".join(parts)


def parse_size(text: str) -> tuple:
    """'WxH' or 'N' (square) -> (height, width)."""
    t = text.lower().strip()
    try:
        if "x" in t:
            w, h = t.split("x")
            return int(h), int(w)
        return int(t), int(t)
    except ValueError:
        raise ConfigError("size", text, "WIDTHxHEIGHT in low-res pixels, e.g. 64x48, or one number")


def grid(*, sizes, frames, steps, guidance, propagation, tiles, precisions, **fixed) -> list:
    """Every combination, in a stable order. propagation: values 'off', 'on' or explicit step
    tuples; 'on' uses default_propagation_steps(steps)."""
    out = []
    for (h, w), n, s, g, p, tile, prec in itertools.product(sizes, frames, steps, guidance, propagation, tiles,
                                                            precisions):
        if p == "off":
            prop = ()
        elif p == "on":
            prop = default_propagation_steps(s)
        else:
            prop = tuple(p)
        out.append(Scenario(height=h, width=w, frames=n, steps=s, guidance=g, propagation_steps=prop, tile=tile,
                            precision=prec, **fixed))
    return out
