"""The embeddable upscaler: build once (immutable model), then stream frames through it.

    up = Upscaler.from_weights("weights/", RunConfig(...), BackendConfig(...))   # or .demo()
    for frame in up.stream(frames):   # uint8 [h, w, 3] in, uint8 [4h, 4w, 3] out
        ...
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Iterable, Iterator

import numpy as np
import torch

from ..config import RunConfig
from ..errors import ConfigError, InputError
from .. import spec as specs
from ..models import schedulers as sch
from ..models.release import load_network, scheduler_configs
from ..models.text import TextEncoder
from . import pipeline as pl
from ..config import BackendConfig
from .factory import make_backend, make_runner
from .plan import release_tiles
from .stream import windowed

MIN_FRAME, MAX_FRAME = 8, 4096  # low-res pixels per side


def get_propagator(name: str) -> Callable:
    if name == "kernel":
        from ..kernels import propagate
        return propagate
    from ..models.propagation import propagate
    return propagate


def frame_noise(seed: int, index: int, shape, stream: int) -> torch.Tensor:
    """Noise of one frame from (seed, frame index, stream): the same wherever the frame's window
    starts, on every device (drawn on the CPU)."""
    g = torch.Generator().manual_seed((seed * 1_000_003 + index * 2 + stream) % (2 ** 63))
    return torch.randn(shape, generator=g)


@dataclass(frozen=True)
class Loaded:
    nets: pl.Networks
    text: TextEncoder
    info: dict


class Upscaler:
    def __init__(self, loaded: Loaded, cfg: RunConfig = RunConfig()):
        self.nets, self.text, self.info, self.cfg = loaded.nets, loaded.text, loaded.info, cfg
        self._cond = None

    # --- construction ---------------------------------------------------------------------------
    @classmethod
    def from_weights(cls, weights_dir, cfg: RunConfig = RunConfig(), backend: BackendConfig = BackendConfig(),
                     vae: str = "3d") -> "Upscaler":
        if vae not in ("3d", "video"):
            raise ConfigError("vae", vae, "'3d' or 'video'")
        device = torch.device(backend.device)
        be = make_backend(backend)
        unet = load_network(weights_dir, "unet")
        vae_net = load_network(weights_dir, f"vae_{vae}")
        raft = None
        if cfg.sampler.propagation_steps:
            raft_net = load_network(weights_dir, "raft")
            raft_net.module.iters = cfg.propagation.raft_iters
            raft = make_runner(be, specs.RAFT, raft_net)
        ddim_cfg, lr_cfg = scheduler_configs(weights_dir)
        text_dtype = torch.float16 if backend.precision == "fp16" and device.type == "cuda" else torch.float32
        text = TextEncoder.from_folders(f"{weights_dir}/text_encoder", f"{weights_dir}/tokenizer", device, text_dtype)
        nets = pl.Networks(
            unet=make_runner(be, specs.UNET, unet),
            vae=make_runner(be, specs.get_spec(f"vae_{vae}"), vae_net),
            raft=raft,
            propagate=get_propagator(cfg.propagation.propagator),
            ddim=sch.DDIMConfig.from_config(ddim_cfg),
            low_res_acp=sch.alphas_cumprod(sch.LowResNoiseConfig.from_config(lr_cfg)).to(device),
            device=device,
            scaling_factor=float(vae_net.config.get("scaling_factor", 0.08333)),
        )
        info = {"weights": str(weights_dir), "backend": be.name, "vae": f"vae_{vae}",
                "unet_hash": unet.weights_hash}
        return cls(Loaded(nets, text, info), cfg)

    @classmethod
    def demo(cls, cfg: RunConfig = RunConfig(), backend: BackendConfig = BackendConfig(), vae: str = "3d",
             seed: int = 0) -> "Upscaler":
        """The tiny demo model (trained on synthetic video: a soft x4 upscale; see models/demo.py)."""
        from ..models.demo import demo_weights_dir
        up = cls.from_weights(demo_weights_dir(seed, with_raft=bool(cfg.sampler.propagation_steps)), cfg, backend, vae)
        up.info["demo"] = True
        return up

    def with_config(self, cfg: RunConfig) -> "Upscaler":
        """Same loaded model, other run settings (networks are shared, not reloaded)."""
        if cfg.sampler.propagation_steps and self.nets.raft is None:
            raise ConfigError("propagation_steps", list(cfg.sampler.propagation_steps),
                              "empty for a model loaded without RAFT (load with propagation steps set)")
        up = Upscaler(Loaded(replace(self.nets, propagate=get_propagator(cfg.propagation.propagator)),
                             self.text, self.info), cfg)
        return up

    # --- per run -------------------------------------------------------------------------------
    def conditioning(self) -> pl.Conditioning:
        if self._cond is None:  # the prompt is encoded once per upscaler
            s = self.cfg.sampler
            cond = self.text.encode(s.full_prompt).to(self.nets.device)
            uncond = self.text.encode(s.negative_prompt).to(self.nets.device) if s.guided else None
            self._cond = pl.Conditioning(cond, uncond)
        return self._cond

    def tile_size(self, h: int, w: int):
        t = self.cfg.tiles
        if t.size is not None:
            return t.size if (t.size < h or t.size < w) else None
        return t.auto_size if h * w >= t.auto_area else None

    def upscale_window(self, low_res: torch.Tensor, first_index: int, progress: Callable | None = None):
        """low_res [1, 3, T, h, w] in [-1, 1] -> video [1, 3, T, 4h, 4w] in [-1, 1]."""
        T, h, w = low_res.shape[2:]
        cfg, nets, cond = self.cfg, self.nets, self.conditioning()
        seed = cfg.sampler.seed
        latents = torch.stack([frame_noise(seed, first_index + i, (4, h, w), 0) for i in range(T)], 1)[None]
        lr_noise = torch.stack([frame_noise(seed, first_index + i, (3, h, w), 1) for i in range(T)], 1)[None]
        latents, lr_noise = latents.to(nets.device), lr_noise.to(nets.device)
        flows = self.flows(low_res) if (cfg.sampler.propagation_steps and T > 1) else None
        tile = self.tile_size(h, w)
        if tile is None or cfg.tiles.mode == "blend":
            ov = min(cfg.tiles.overlap, (tile or 0) // 2)
            z = pl.denoise(nets, cfg, cond, low_res, latents, lr_noise, flows, tile=tile, tile_overlap=ov,
                           progress=progress)
            video = pl.decode(nets, cfg, z, low_res, tile=tile, tile_overlap=ov)
        else:
            video = self._release_tiles(low_res, latents, lr_noise, flows, tile, progress)
        return self.color_fix(video, low_res)

    def _release_tiles(self, low_res, latents, lr_noise, flows, tile, progress):
        """The release's tiling: an independent run per padded tile, only its core pasted back."""
        T, h, w = low_res.shape[2:]
        out = torch.zeros((1, 3, T, 4 * h, 4 * w), device=low_res.device)
        for core, pad in release_tiles(h, w, tile, self.cfg.tiles.overlap):
            ps = (slice(None), slice(None), slice(None), slice(pad.rows.start, pad.rows.stop),
                  slice(pad.cols.start, pad.cols.stop))
            f = (flows[0][ps].contiguous(), flows[1][ps].contiguous()) if flows is not None else None
            z = pl.denoise(self.nets, self.cfg, self.conditioning(), low_res[ps], latents[ps], lr_noise[ps], f,
                           progress=progress)
            v = pl.decode(self.nets, self.cfg, z, low_res[ps])
            r0, c0 = 4 * (core.rows.start - pad.rows.start), 4 * (core.cols.start - pad.cols.start)
            out[..., 4 * core.rows.start:4 * core.rows.stop, 4 * core.cols.start:4 * core.cols.stop] = \
                v[..., r0:r0 + 4 * core.rows.size, c0:c0 + 4 * core.cols.size]
        return out

    def flows(self, low_res):
        from .flow import bidirectional_flows
        raft = self.nets.raft
        return bidirectional_flows(low_res, lambda a, b: raft(image1=a, image2=b)["flow_up"],
                                   fix_resize=self.cfg.propagation.fix_flow_resize)

    def color_fix(self, video, low_res):
        if self.cfg.decode.color_fix == "none":
            return video
        from ..models.color import color_fix
        fixed = color_fix(video[0].transpose(0, 1), low_res[0].transpose(0, 1), self.cfg.decode.color_fix)
        return fixed.transpose(0, 1)[None]

    def check_frame(self, frame: np.ndarray, index: int, shape=None):
        if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise InputError(f"frame {index}: expected a uint8 array [H, W, 3], got "
                             f"{getattr(frame, 'dtype', type(frame).__name__)} {getattr(frame, 'shape', '')}")
        h, w = frame.shape[:2]
        if not (MIN_FRAME <= h <= MAX_FRAME and MIN_FRAME <= w <= MAX_FRAME):
            raise InputError(f"frame size {w}x{h} is not supported: each side must be in "
                             f"[{MIN_FRAME}, {MAX_FRAME}] low-res pixels")
        if shape is not None and frame.shape != shape:
            raise InputError(f"frame {index} has shape {frame.shape}, earlier frames {shape}")

    def stream(self, frames: Iterable[np.ndarray], progress: Callable | None = None) -> Iterator[np.ndarray]:
        """uint8 [h, w, 3] frames in, uint8 [4h, 4w, 3] frames out, in bounded memory."""
        first = {}

        def checked():
            for i, f in enumerate(frames):
                self.check_frame(f, i, first.get("shape"))
                first.setdefault("shape", f.shape)
                yield f

        def process(chunk, span):
            x = torch.from_numpy(np.stack(chunk)).to(self.nets.device)  # [T, h, w, 3] uint8
            low_res = (x.permute(3, 0, 1, 2)[None].float() / 255.0 - 0.5) * 2.0  # [1, 3, T, h, w]
            video = self.upscale_window(low_res, span.start, progress)
            if progress:
                progress("frames", span.stop, None)
            return list(video[0].permute(1, 2, 3, 0).float().cpu().numpy())  # [T] of [4h, 4w, 3]

        w = self.cfg.window
        yield from windowed(checked(), process, w.frames, w.overlap)
