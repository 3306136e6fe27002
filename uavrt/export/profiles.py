"""TensorRT optimisation profiles derived from the runtime plan.

A TensorRT engine only accepts input shapes inside the (min, max) box of its optimisation
profile and is tuned for `opt`. The shapes the runtime will feed are known from the run plan
(clip length, classifier-free-guidance batch, tile size, VAE chunk, RAFT pairs per call), so the
profiles are derived from that plan, never typed by hand: one `ProfilePlan` -> one profile per
network, shape by shape, through the network's `NetworkSpec` dims.

Everything here is pure (no TensorRT) so it is tested on CPU.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from ..errors import ConfigError, check_range
from ..spec import NetworkSpec

HW = tuple  # (height, width)


def _check_hw_triplet(prefix: str, lo: HW, opt: HW, hi: HW, *, multiple_of: int = 1, floor: int = 1):
    for name, hw in ((f"{prefix}_min", lo), (f"{prefix}_opt", opt), (f"{prefix}_max", hi)):
        if (not isinstance(hw, tuple) or len(hw) != 2
                or any(isinstance(v, bool) or not isinstance(v, int) for v in hw)):
            raise ConfigError(name, hw, "a (height, width) tuple of two integers")
        for v in hw:
            if v < floor or v % multiple_of:
                raise ConfigError(name, hw, f"sizes >= {floor} that are multiples of {multiple_of}")
    for i, axis in enumerate(("height", "width")):
        if not lo[i] <= opt[i] <= hi[i]:
            raise ConfigError(f"{prefix}_opt", opt,
                              f"{axis} between {prefix}_min {lo[i]} and {prefix}_max {hi[i]}")


@dataclass(frozen=True)
class ProfilePlan:
    """What the runtime will feed each network; sizes are (height, width).

    U-Net: batch `cfg_batch` (2 = [uncond, cond] with guidance, 1 without), clips of
    `min_clip_frames..clip_frames` frames (a video shorter than a clip runs whole), latent
    tiles/frames of `latent_min..latent_max` (latent = low-res pixels for the x4 upscaler),
    text `text_len` x `text_dim` (77 x 1024 for the release's text encoder).
    VAE decoders: batch 1, chunks of 1..`vae_frames` frames (the last chunk may be shorter),
    latent tiles `vae_latent_min..vae_latent_max` (the output is 4x that).
    RAFT: 1..`raft_pairs` image pairs per call at `raft_min..raft_max` pixels (multiples of 8,
    >= 128: below that RAFT's 1/64 pyramid level degenerates).

    Defaults fit the release's plan (8-frame clips, guidance on, 256-px auto tiles, 3-frame VAE
    chunks) with room for untiled frames up to 384 px; widen a range and the engine accepts more
    shapes at the cost of activation memory (sized for `max`) and some speed away from `opt`.
    """

    clip_frames: int = 8
    min_clip_frames: int = 1
    cfg_batch: int = 2
    latent_min: HW = (32, 32)
    latent_opt: HW = (256, 256)
    latent_max: HW = (384, 384)
    text_len: int = 77
    text_dim: int = 1024
    vae_frames: int = 3
    vae_latent_min: HW = (32, 32)
    vae_latent_opt: HW = (128, 128)
    vae_latent_max: HW = (256, 256)
    raft_pairs: int = 8
    raft_min: HW = (128, 128)
    raft_opt: HW = (256, 256)
    raft_max: HW = (720, 720)

    def __post_init__(self):
        # JSON round trips turn tuples into lists: accept both, store tuples (hashable, frozen)
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, list):
                object.__setattr__(self, f.name, tuple(v))
        check_range("clip_frames", self.clip_frames, 1, 64, integer=True)
        check_range("min_clip_frames", self.min_clip_frames, 1, self.clip_frames, integer=True)
        check_range("cfg_batch", self.cfg_batch, 1, 2, integer=True)
        check_range("text_len", self.text_len, 1, 4096, integer=True)
        check_range("text_dim", self.text_dim, 1, 65536, integer=True)
        check_range("vae_frames", self.vae_frames, 1, 64, integer=True)
        check_range("raft_pairs", self.raft_pairs, 1, 256, integer=True)
        _check_hw_triplet("latent", self.latent_min, self.latent_opt, self.latent_max)
        _check_hw_triplet("vae_latent", self.vae_latent_min, self.vae_latent_opt, self.vae_latent_max)
        _check_hw_triplet("raft", self.raft_min, self.raft_opt, self.raft_max, multiple_of=8, floor=128)

    @classmethod
    def from_run_config(cls, run, **overrides) -> "ProfilePlan":
        """The plan a `uavrt.config.RunConfig` implies; `overrides` set any other field."""
        tile = run.tiles.size or run.tiles.auto_size
        values = dict(clip_frames=run.clips.length, cfg_batch=2 if run.sampler.guided else 1,
                      vae_frames=run.decode.chunk_frames)
        if "latent_opt" not in overrides:
            lo, hi = overrides.get("latent_min", cls.latent_min), overrides.get("latent_max", cls.latent_max)
            values["latent_opt"] = (min(max(tile, lo[0]), hi[0]), min(max(tile, lo[1]), hi[1]))
        values.update(overrides)
        return cls(**values)

    def dim_ranges(self, network: str) -> dict:
        """{dim name: (min, opt, max)} for every named dim of `network`'s spec."""
        def hw(lo, opt, hi):
            return {"H": (lo[0], opt[0], hi[0]), "W": (lo[1], opt[1], hi[1])}

        if network == "unet":
            return {"B": (self.cfg_batch,) * 3,
                    "T": (self.min_clip_frames, self.clip_frames, self.clip_frames),
                    "L": (self.text_len,) * 3, "C": (self.text_dim,) * 3,
                    **hw(self.latent_min, self.latent_opt, self.latent_max)}
        if network in ("vae_3d", "vae_video"):
            return {"B": (1, 1, 1), "T": (1, self.vae_frames, self.vae_frames),
                    **hw(self.vae_latent_min, self.vae_latent_opt, self.vae_latent_max)}
        if network == "raft":
            return {"N": (1, self.raft_pairs, self.raft_pairs),
                    **hw(self.raft_min, self.raft_opt, self.raft_max)}
        raise ConfigError("network", network, "one of 'unet', 'vae_3d', 'vae_video', 'raft'")

    def to_dict(self) -> dict:
        return {f.name: list(v) if isinstance(v := getattr(self, f.name), tuple) else v
                for f in fields(self)}


def derive_profiles(spec: NetworkSpec, plan: ProfilePlan, config: dict | None = None) -> dict:
    """{input name: (min shape, opt shape, max shape)} for `spec` under `plan`.

    Fixed dims stay fixed; named dims take the plan's (min, opt, max); a 0-d input gets
    ((), (), ()). Dims the weights fix (`spec.config_dims`, e.g. the U-Net's text width C =
    `cross_attention_dim`) come from `config` when given, whatever the plan says. The ranges are
    checked against the spec's own limits (e.g. RAFT's multiples of 8 and >= 128) so an engine is
    never built for shapes the network refuses.
    """
    ranges = plan.dim_ranges(spec.name)
    for dim, key in getattr(spec, "config_dims", {}).items():
        if config is not None and key in config:
            ranges[dim] = (int(config[key]),) * 3
    for dim, (lo, opt, hi) in ranges.items():
        limit = spec.ranges.get(dim)
        if limit is None:
            continue
        for which, v in (("min", lo), ("opt", opt), ("max", hi)):
            if not limit.min <= v <= limit.max or v % limit.multiple_of:
                raise ConfigError(f"{spec.name} {dim} {which}", v,
                                  f"a value in [{limit.min}, {limit.max}] that is a multiple of "
                                  f"{limit.multiple_of} (the network's limits)")
    profiles = {}
    for t in spec.inputs:
        shapes = []
        for k in range(3):
            shape = []
            for d in t.dims:
                if isinstance(d, int):
                    shape.append(d)
                elif d in ranges:
                    shape.append(ranges[d][k])
                else:
                    raise ConfigError(f"{spec.name}.{t.name} dim", d,
                                      f"a dim the profile plan sets ({', '.join(sorted(ranges))})")
            shapes.append(tuple(shape))
        profiles[t.name] = tuple(shapes)
    return profiles
