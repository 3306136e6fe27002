"""Frozen configuration of a run. The CLI builds these; the library never sees argparse.

Defaults are the release's (inference_upscale_a_video.py at 10ca1d7 and the pipeline).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from .errors import ConfigError, check_choice, check_number, check_range, check_type

_SEED_RANGE = (-(2 ** 63), 2 ** 64 - 1)  # what torch.Generator.manual_seed takes


def _check_fields(cfg, kinds: dict) -> None:
    """Type of every field at construction, so a wrong type fails here with a ConfigError
    naming it instead of deep inside a run (field -> (types, what is allowed))."""
    for name, (types, what) in kinds.items():
        check_type(name, getattr(cfg, name), types, what)

BACKENDS = ("torch", "onnxruntime", "tensorrt")
MAX_NOISE_LEVEL = 350  # the x4 upscaler was trained with noise augmentation up to 350


@dataclass(frozen=True)
class SamplerConfig:
    steps: int = 30
    guidance_scale: float = 6.0
    noise_level: int = 120
    propagation_steps: tuple = ()  # 0-based positions in the timestep list
    prompt: str = ""
    added_prompt: str = "best quality, extremely detailed"
    negative_prompt: str = "blur, worst quality"
    seed: int = 10

    def __post_init__(self):
        check_range("steps", self.steps, 1, 1000, integer=True)
        check_range("noise_level", self.noise_level, 0, MAX_NOISE_LEVEL, integer=True)
        check_number("guidance_scale", self.guidance_scale, 0.0, 50.0)
        check_range("seed", self.seed, *_SEED_RANGE, integer=True)
        _check_fields(self, {k: (str, "a string") for k in ("prompt", "added_prompt", "negative_prompt")})
        if isinstance(self.propagation_steps, (str, bytes)) or not hasattr(self.propagation_steps, "__iter__"):
            raise ConfigError("propagation_steps", self.propagation_steps,
                              "a tuple of integers (0-based step positions), e.g. (24, 26, 28)")
        steps = list(self.propagation_steps)
        for s in steps:
            if isinstance(s, bool) or not isinstance(s, int):
                raise ConfigError("propagation_steps", steps, f"integers in [0, steps-1] = [0, {self.steps - 1}]")
        object.__setattr__(self, "propagation_steps", tuple(sorted(set(steps))))
        for s in self.propagation_steps:
            if isinstance(s, bool) or not isinstance(s, int) or not 0 <= s < self.steps:
                raise ConfigError("propagation_steps", list(self.propagation_steps),
                                  f"integers in [0, steps-1] = [0, {self.steps - 1}]")

    @property
    def full_prompt(self) -> str:
        # the release joins the (LLaVA) caption and the added prompt with a space
        return f"{self.prompt} {self.added_prompt}" if self.prompt else f" {self.added_prompt}"

    @property
    def guided(self) -> bool:
        return self.guidance_scale > 1.0  # as diffusers: CFG only when the scale exceeds 1


@dataclass(frozen=True)
class PropagationConfig:
    interpolation: str = "nearest"
    mode: str = "fuse"
    fuse_scale: float = 0.5
    alpha1: float = 0.001
    alpha2: float = 0.05
    propagator: str = "torch"  # "torch" reference | "kernel" (fused warp+occlusion kernel)
    raft_iters: int = 20
    fix_flow_resize: bool = False  # True: correct the release's RAFT_bi flow-rescale quirk

    def __post_init__(self):
        check_choice("interpolation", self.interpolation, ("nearest", "bilinear"))
        check_choice("mode", self.mode, ("fuse", "copy"))
        check_choice("propagator", self.propagator, ("torch", "kernel"))
        check_range("raft_iters", self.raft_iters, 1, 100, integer=True)
        check_number("fuse_scale", self.fuse_scale, 0.0, 1.0)
        check_number("alpha1", self.alpha1, 0.0, 1e6)
        check_number("alpha2", self.alpha2, 0.0, 1e6)
        check_type("fix_flow_resize", self.fix_flow_resize, bool, "True or False")


@dataclass(frozen=True)
class ClipConfig:
    """Temporal clips inside a window: the U-Net sees `length` frames at a time."""

    length: int = 8
    overlap: int = 2
    merge: str = "release"  # "release": running 0.5/0.5 average (parity) | "mean": equal weights

    def __post_init__(self):
        check_range("clip_length", self.length, 1, 64, integer=True)
        check_range("clip_overlap", self.overlap, 0, self.length - 1, integer=True)
        check_choice("clip_merge", self.merge, ("release", "mean"))


@dataclass(frozen=True)
class TileConfig:
    """Spatial tiles, in low-res (= latent) pixels.

    mode "blend": latent-space tiles blended at every step (seamless; one denoising run).
    mode "release": independent runs per tile, cropped and pasted (the release's behaviour).
    size None: no tiling unless the frame reaches `auto_area` pixels (release: 384*384 -> 256).
    """

    size: int | None = None
    overlap: int = 64
    mode: str = "blend"
    auto_area: int = 384 * 384
    auto_size: int = 256

    def __post_init__(self):
        check_range("tile_auto_size", self.auto_size, 16, 4096, integer=True)
        check_range("tile_auto_area", self.auto_area, 1, 2 ** 40, integer=True)
        if self.size is not None:
            check_range("tile", self.size, 16, 4096, integer=True)
        # always checked, also when tiling is automatic (the tile is then auto_size)
        tile = self.size if self.size is not None else self.auto_size
        check_range("tile_overlap", self.overlap, 0, tile // 2, integer=True)
        check_choice("tile_mode", self.mode, ("blend", "release"))


@dataclass(frozen=True)
class WindowConfig:
    """Temporal windows over the video: each window is denoised independently (bounded memory)."""

    frames: int = 32
    overlap: int = 4

    def __post_init__(self):
        check_range("window", self.frames, 2, 100000, integer=True)
        check_range("window_overlap", self.overlap, 0, self.frames - 1, integer=True)


@dataclass(frozen=True)
class DecodeConfig:
    chunk_frames: int = 3  # the release decodes 3 frames at a time (GroupNorm spans the chunk)
    color_fix: str = "none"
    w_lr: float = 1.0

    def __post_init__(self):
        check_range("vae_chunk", self.chunk_frames, 1, 64, integer=True)
        check_choice("color_fix", self.color_fix, ("none", "wavelet", "adain"))
        check_number("w_lr", self.w_lr, 0.0, 1.0)


@dataclass(frozen=True)
class RunConfig:
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    propagation: PropagationConfig = field(default_factory=PropagationConfig)
    clips: ClipConfig = field(default_factory=ClipConfig)
    tiles: TileConfig = field(default_factory=TileConfig)
    window: WindowConfig = field(default_factory=WindowConfig)
    decode: DecodeConfig = field(default_factory=DecodeConfig)
    # (tile, clip) pieces per U-Net call, stacked along the batch axis; an execution setting: the
    # pieces are independent batch elements, so it changes speed and memory, not the maths
    # None: as many as an estimated memory budget allows (runtime/batching.py)
    unet_batch: int | None = 1

    def __post_init__(self):
        _check_fields(self, {name: (cls, f"a {cls.__name__} (from uavrt.config)") for name, cls in (
            ("sampler", SamplerConfig), ("propagation", PropagationConfig), ("clips", ClipConfig),
            ("tiles", TileConfig), ("window", WindowConfig), ("decode", DecodeConfig))})
        if self.unet_batch is not None:
            check_range("unet_batch", self.unet_batch, 1, 4096, integer=True)


@dataclass(frozen=True)
class OrtOptions:
    """ONNX Runtime: intra-op threads (None: ORT's default, one per physical core), providers
    (None: by device), and the session options that change speed, not results (beyond float
    reassociation): graph optimisation level and the CPU memory arena. Defaults chosen by
    measurement (benchmarks/throughput.py --sections ort)."""

    threads: int | None = None
    providers: tuple | None = None
    graph_optimization: str = "all"  # "basic" | "extended" | "all" ("all" adds NCHWc layouts)
    memory_arena: bool = True  # off: a malloc per intermediate per run

    def __post_init__(self):
        if self.threads is not None:
            check_range("ort_threads", self.threads, 1, 1024, integer=True)
        check_choice("ort_graph_optimization", self.graph_optimization, ("basic", "extended", "all"))


@dataclass(frozen=True)
class TorchOptions:
    """PyTorch backend accelerations, both off until measured (benchmarks/results/throughput_*.md).

    compile: torch.compile (inductor) of the U-Net and VAE (on CPU: C++ built with the system
    compiler). cuda_graphs: CUDA-graph capture of the U-Net per plan shape (CUDA devices only)."""

    compile: bool = False
    cuda_graphs: bool = False


@dataclass(frozen=True)
class TrtOptions:
    """TensorRT: copy outputs out of the engine's buffers; CUDA-graph capture per input shape."""

    copy_outputs: bool = False
    cuda_graphs: bool = False

    def __post_init__(self):
        check_type("copy_outputs", self.copy_outputs, bool, "True or False")
        check_type("cuda_graphs", self.cuda_graphs, bool, "True or False")


DEVICES = "'cpu', 'cuda' or 'cuda:N' (N = 0, 1, ... a GPU index)"


def check_device_name(device) -> str:
    """The form of a device name; whether this machine has it is checked by check_device."""
    if not isinstance(device, str) or not re.fullmatch(r"cpu|cuda(:\d+)?", device):
        raise ConfigError("device", device, DEVICES)
    return device


def check_device(device) -> str:
    """Refuse a device this torch build / machine does not have, before any model is built."""
    check_device_name(device)
    if device == "cpu":
        return device
    import torch
    if not torch.cuda.is_available():
        why = ("this torch build has no CUDA" if torch.version.cuda is None
               else "torch finds no CUDA GPU (driver missing or CUDA_VISIBLE_DEVICES empty)")
        raise ConfigError("device", device, f"'cpu' here ({why}; torch {torch.__version__})")
    n = torch.cuda.device_count()
    if ":" in device and int(device.split(":")[1]) >= n:
        raise ConfigError("device", device, f"'cpu', 'cuda' or cuda:0..cuda:{n - 1} ({n} GPU(s) visible)")
    return device


@dataclass(frozen=True)
class BackendConfig:
    """Which runtime runs the networks, where, at which precision (and each backend's options)."""

    backend: str = "torch"
    device: str = "cpu"
    precision: str = "fp32"  # fp16: U-Net (and text encoder) in fp16 as the release; VAE/RAFT stay fp32
    engines: str | None = None  # folder of exported ONNX graphs / TensorRT plans
    ort: OrtOptions = field(default_factory=OrtOptions)
    torch: TorchOptions = field(default_factory=TorchOptions)
    trt: TrtOptions = field(default_factory=TrtOptions)

    def __post_init__(self):
        check_choice("backend", self.backend, BACKENDS)
        check_device_name(self.device)
        check_choice("precision", self.precision, ("fp32", "fp16"))
        check_type("ort", self.ort, OrtOptions, "an OrtOptions (from uavrt.config)")
        check_type("trt", self.trt, TrtOptions, "a TrtOptions (from uavrt.config)")
        if self.engines is not None:
            check_type("engines", self.engines, (str, os.PathLike), "a folder path (str) or None")
            object.__setattr__(self, "engines", os.fspath(self.engines))
        if self.backend == "tensorrt" and not self.engines:
            raise ConfigError("engines", self.engines, "a folder of TensorRT engines (uavrt export --trt)")
        if self.torch.compile and self.backend != "torch":
            raise ConfigError("compile", True, f"the torch backend only (backend is {self.backend!r})")
        if self.torch.cuda_graphs and (self.backend != "torch" or not str(self.device).startswith("cuda")):
            raise ConfigError("cuda_graphs", True, "the torch backend on a CUDA device (backend "
                              f"{self.backend!r}, device {self.device!r}); TensorRT has its own (trt.cuda_graphs)")
