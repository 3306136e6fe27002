"""Frozen configuration of a run. The CLI builds these; the library never sees argparse.

Defaults are the release's (inference_upscale_a_video.py at 10ca1d7 and the pipeline).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import ConfigError, check_choice, check_range

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
        if not (0.0 <= float(self.guidance_scale) <= 50.0):
            raise ConfigError("guidance_scale", self.guidance_scale, "a value in [0, 50]")
        object.__setattr__(self, "propagation_steps", tuple(sorted(set(self.propagation_steps))))
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
        if self.size is not None:
            check_range("tile", self.size, 16, 4096, integer=True)
            check_range("tile_overlap", self.overlap, 0, self.size // 2, integer=True)
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
    unet_batch: int = 1

    def __post_init__(self):
        check_range("unet_batch", self.unet_batch, 1, 4096, integer=True)


@dataclass(frozen=True)
class OrtOptions:
    """ONNX Runtime: intra-op threads (None: ORT's default) and providers (None: by device)."""

    threads: int | None = None
    providers: tuple | None = None

    def __post_init__(self):
        if self.threads is not None:
            check_range("ort_threads", self.threads, 1, 1024, integer=True)


@dataclass(frozen=True)
class TrtOptions:
    """TensorRT: copy outputs out of the engine's buffers; CUDA-graph capture per input shape."""

    copy_outputs: bool = False
    cuda_graphs: bool = False


@dataclass(frozen=True)
class BackendConfig:
    """Which runtime runs the networks, where, at which precision (and each backend's options)."""

    backend: str = "torch"
    device: str = "cpu"
    precision: str = "fp32"  # fp16: U-Net (and text encoder) in fp16 as the release; VAE/RAFT stay fp32
    engines: str | None = None  # folder of exported ONNX graphs / TensorRT plans
    ort: OrtOptions = field(default_factory=OrtOptions)
    trt: TrtOptions = field(default_factory=TrtOptions)

    def __post_init__(self):
        check_choice("backend", self.backend, BACKENDS)
        check_choice("precision", self.precision, ("fp32", "fp16"))
        if self.backend == "tensorrt" and not self.engines:
            raise ConfigError("engines", self.engines, "a folder of TensorRT engines (uavrt export --trt)")
