"""One I/O specification per network.

The same spec drives ONNX export (names, dynamic axes), runtime validation at the backend
boundary, buffer allocation and TensorRT optimisation profiles, so the three can never disagree.
Dims are ints (fixed) or names (dynamic, shared across inputs: every input that says "T" must
agree on T).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .errors import InputError

_DTYPES = {"float32": torch.float32, "float16": torch.float16, "int64": torch.int64}


@dataclass(frozen=True)
class TensorSpec:
    name: str
    dtype: str  # "float32" (floating: any float dtype accepted, cast by the backend) | "int64"
    dims: tuple  # e.g. ("B", 4, "T", "H", "W"); () for a scalar
    # keep_fp32: stays float32 even in an fp16 graph (flow/grid maths, VAE range)
    keep_fp32: bool = False

    @property
    def is_float(self) -> bool:
        return self.dtype.startswith("float")

    def torch_dtype(self, precision: str = "fp32") -> torch.dtype:
        if self.is_float and precision == "fp16" and not self.keep_fp32:
            return torch.float16
        return _DTYPES[self.dtype]


@dataclass(frozen=True)
class DimRange:
    """Allowed range of a named dim and the value to optimise for (TensorRT opt)."""

    min: int
    opt: int
    max: int
    multiple_of: int = 1


@dataclass(frozen=True)
class NetworkSpec:
    name: str
    inputs: tuple
    outputs: tuple
    ranges: dict = field(default_factory=dict)  # dim name -> DimRange
    # dim name -> size used to trace the export. Every traced size is >= 2 (torch.export
    # specialises 0/1) and differs from the others (equal sizes can be unified into one symbol).
    example: dict = field(default_factory=dict)
    # dims fixed by the weights, not by the call: dim name -> key of the network's config
    config_dims: dict = field(default_factory=dict)

    @property
    def fp32_only(self) -> bool:
        """Every float input keeps fp32 (VAE, RAFT): the network runs in fp32 even in an fp16 run,
        as the release runs it (range and precision need it)."""
        return all(t.keep_fp32 or not t.is_float for t in self.inputs)

    def run_precision(self, precision: str) -> str:
        """The precision this network runs at in a run of `precision`."""
        return "fp32" if self.fp32_only else precision

    @property
    def input_names(self) -> tuple:
        return tuple(t.name for t in self.inputs)

    @property
    def output_names(self) -> tuple:
        return tuple(t.name for t in self.outputs)

    def bind_dims(self, inputs: dict) -> dict:
        """Check names, ranks, fixed dims and shared named dims; return {dim name: value}."""
        want, got = set(self.input_names), set(inputs)
        if want != got:
            raise InputError(f"{self.name}: inputs must be exactly {sorted(want)}; "
                             f"missing {sorted(want - got)}, unexpected {sorted(got - want)}")
        dims: dict = {}
        for t in self.inputs:
            x = inputs[t.name]
            if not isinstance(x, torch.Tensor):
                raise InputError(f"{self.name}.{t.name}: expected a torch.Tensor, got {type(x).__name__}")
            if t.is_float != x.is_floating_point():
                raise InputError(f"{self.name}.{t.name}: dtype {x.dtype} is not allowed: expected "
                                 f"{'a floating' if t.is_float else t.dtype} tensor")
            if x.dim() != len(t.dims):
                raise InputError(f"{self.name}.{t.name}: shape {tuple(x.shape)} has rank {x.dim()}, "
                                 f"expected rank {len(t.dims)} {t.dims}")
            for d, n in zip(t.dims, x.shape):
                if isinstance(d, int):
                    if n != d:
                        raise InputError(f"{self.name}.{t.name}: shape {tuple(x.shape)} does not match {t.dims}")
                elif dims.setdefault(d, n) != n:
                    raise InputError(f"{self.name}.{t.name}: dim {d}={n} disagrees with {d}={dims[d]} "
                                     f"of another input")
        for d, n in dims.items():
            r = self.ranges.get(d)
            if r is not None and n % r.multiple_of:
                raise InputError(f"{self.name}: dim {d}={n} must be a multiple of {r.multiple_of}")
        return dims

    @property
    def dim_names(self) -> tuple:
        """Named dims in order of first appearance in the inputs."""
        seen: dict = {}
        for t in self.inputs:
            for d in t.dims:
                if isinstance(d, str):
                    seen.setdefault(d, None)
        return tuple(seen)

    def dynamic_dims(self) -> tuple:
        """Named dims that stay dynamic in an exported graph (config dims are fixed)."""
        return tuple(d for d in self.dim_names if d not in self.config_dims)

    def example_dims(self, config: dict | None = None, **override) -> dict:
        """Concrete sizes for every named dim: `example`, config dims from `config`, overrides."""
        dims = dict(self.example)
        for d, key in self.config_dims.items():
            if config is not None and key in config:
                dims[d] = int(config[key])
        dims.update(override)
        missing = [d for d in self.dim_names if d not in dims]
        if missing:
            raise KeyError(f"{self.name}: no size for dims {missing} (config keys "
                           f"{[self.config_dims.get(d) for d in missing]})")
        return dims

    def sample_inputs(self, dims: dict, *, precision: str = "fp32", seed: int = 0, device="cpu") -> dict:
        """Seeded random inputs of the given dim sizes (export tracing, tests, benchmarks).

        Floats ~ N(0, 1) in the network's precision; integers in [0, 350] (valid as a timestep,
        < 1000, and as a noise level, <= max_noise_level 350).
        """
        g = torch.Generator().manual_seed(seed)
        out = {}
        for t in self.inputs:
            shape = tuple(_eval_dim(d, dims) for d in t.dims)
            if t.is_float:
                x = torch.randn(shape, generator=g).to(t.torch_dtype(precision))
            else:
                x = torch.randint(0, 351, shape, generator=g, dtype=torch.int64)
            out[t.name] = x.to(device)
        return out

    def to_json(self) -> dict:
        """Plain-JSON description (embedded in exported graphs' metadata)."""
        def tensor(t):
            return {"name": t.name, "dtype": t.dtype, "dims": list(t.dims), "keep_fp32": t.keep_fp32}
        return {"name": self.name, "inputs": [tensor(t) for t in self.inputs],
                "outputs": [tensor(t) for t in self.outputs],
                "ranges": {k: {"min": r.min, "opt": r.opt, "max": r.max, "multiple_of": r.multiple_of}
                           for k, r in self.ranges.items()},
                "config_dims": dict(self.config_dims)}

    def output_shapes(self, dims: dict) -> dict:
        """Concrete output shapes for bound dims; dims like '4*H' are expressions of named dims."""
        return {t.name: tuple(_eval_dim(d, dims) for d in t.dims) for t in self.outputs}


def _eval_dim(d, dims: dict) -> int:
    if isinstance(d, int):
        return d
    if d in dims:
        return dims[d]
    # tiny expression language: "4*H", "H/8"
    if "*" in d:
        a, b = d.split("*")
        return int(a) * dims[b]
    if "/" in d:
        a, b = d.split("/")
        return dims[a] // int(b)
    raise KeyError(d)


def f32(name, *dims, keep_fp32=False):
    return TensorSpec(name, "float32", tuple(dims), keep_fp32)


def i64(name, *dims):
    return TensorSpec(name, "int64", tuple(dims))


# --- the networks -----------------------------------------------------------------------------
# U-Net: one denoiser call on a clip (batch 2 with guidance: [uncond, cond]).
UNET = NetworkSpec(
    "unet",
    inputs=(f32("sample", "B", 4, "T", "H", "W"), i64("timestep"),
            f32("low_res", "B", 3, "T", "H", "W"), f32("encoder_hidden_states", "B", "L", "C"),
            i64("class_labels", "B")),
    outputs=(f32("noise_pred", "B", 4, "T", "H", "W"),),
    # B: [uncond, cond]; T: 8-frame clips; H, W: latent = low-res frame size (any size: the
    # up path forces the skip size; >= 9 so the 1/8 level is >= 2 px: an exported graph cannot
    # cover both a 1-px and a wider level); L: 77 CLIP tokens.
    ranges={"B": DimRange(1, 2, 4), "T": DimRange(1, 8, 16), "H": DimRange(9, 64, 512),
            "W": DimRange(9, 64, 512), "L": DimRange(1, 77, 77)},
    example={"B": 2, "T": 3, "H": 16, "W": 24, "L": 5},
    config_dims={"C": "cross_attention_dim"},
)

# VAE decoders: latents already divided by the scaling factor. vae_video is conditioned on the
# clean low-res frames through SFT; w_lr scales that conditioning (release: 1.0).
_VAE_RANGES = {"B": DimRange(1, 1, 2), "T": DimRange(1, 3, 8), "H": DimRange(8, 64, 512),
               "W": DimRange(8, 64, 512)}  # the release decodes 3 frames at a time
_VAE_EXAMPLE = {"B": 2, "T": 3, "H": 8, "W": 12}
VAE_3D = NetworkSpec(
    "vae_3d",
    inputs=(f32("latents", "B", 4, "T", "H", "W", keep_fp32=True),),
    outputs=(f32("video", "B", 3, "T", "4*H", "4*W", keep_fp32=True),),
    ranges=_VAE_RANGES, example=_VAE_EXAMPLE,
)
VAE_VIDEO = NetworkSpec(
    "vae_video",
    inputs=(f32("latents", "B", 4, "T", "H", "W", keep_fp32=True),
            f32("low_res", "B", 3, "T", "H", "W", keep_fp32=True), f32("w_lr", keep_fp32=True)),
    outputs=(f32("video", "B", 3, "T", "4*H", "4*W", keep_fp32=True),),
    ranges=_VAE_RANGES, example=_VAE_EXAMPLE,
)

# RAFT at multiple-of-8 sizes; frames in [-1, 1]; iterations are fixed in the graph.
RAFT = NetworkSpec(
    "raft",
    inputs=(f32("image1", "N", 3, "H", "W", keep_fp32=True), f32("image2", "N", 3, "H", "W", keep_fp32=True)),
    outputs=(f32("flow_low", "N", 2, "H/8", "W/8", keep_fp32=True), f32("flow_up", "N", 2, "H", "W", keep_fp32=True)),
    # N: frame pairs of a 12-frame clip, both directions batched
    ranges={"N": DimRange(1, 11, 24), "H": DimRange(128, 256, 2048, 8), "W": DimRange(128, 256, 2048, 8)},
    example={"N": 2, "H": 128, "W": 136},
)

SPECS = {s.name: s for s in (UNET, VAE_3D, VAE_VIDEO, RAFT)}


def get_spec(name: str) -> NetworkSpec:
    from .errors import check_choice
    return SPECS[check_choice("network", name, tuple(SPECS))]
