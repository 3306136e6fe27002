"""The embeddable upscaler: a loaded model plus the frame adapter around the pipeline.

    up = Upscaler.from_weights("weights/", RunConfig(...), BackendConfig(...))   # or .demo()
    for frame in up.stream(frames):   # uint8 [h, w, 3] in, uint8 [4h, 4w, 3] out
        ...

The model (runners, text encoder) is immutable and shared; an Upscaler adds the run settings,
the prompt embeddings (encoded once) and the window plans (built once per window shape).
"""

from __future__ import annotations

from typing import Callable, Iterable, Iterator

import numpy as np
import torch

from ..config import BackendConfig, RunConfig
from ..errors import ConfigError, InputError
from . import pipeline as pl
from .model import Model, get_propagator, load_model
from .plan import Span, plan_window
from .stream import Done, WindowOutput, windowed

MIN_FRAME, MAX_FRAME = 8, 4096  # low-res pixels per side


def frame_noise(seed: int, index: int, shape, stream: int) -> torch.Tensor:
    """Noise of one frame from (seed, frame index, stream): the same wherever the frame's window
    starts, on every device (drawn on the CPU)."""
    g = torch.Generator().manual_seed((seed * 1_000_003 + index * 2 + stream) % (2 ** 63))
    return torch.randn(shape, generator=g)


def to_uint8(video: torch.Tensor) -> torch.Tensor:
    """[1, 3, T, H, W] in [-1, 1] -> [T, H, W, 3] uint8, truncating as the release does (on the
    video's device, so only uint8 crosses to the host)."""
    x = ((video[0] / 2 + 0.5).clamp(0, 1) * 255).to(torch.uint8)
    return x.permute(1, 2, 3, 0)


class Upscaler:
    def __init__(self, model: Model, cfg: RunConfig = RunConfig()):
        if not isinstance(model, Model):
            raise ConfigError("model", type(model).__name__, "a uavrt.runtime.model.Model")
        if not isinstance(cfg, RunConfig):
            raise ConfigError("cfg", type(cfg).__name__, "a uavrt.config.RunConfig")
        if cfg.sampler.propagation_steps and model.raft is None:
            raise ConfigError("propagation_steps", list(cfg.sampler.propagation_steps),
                              "empty for a model loaded without RAFT (load with propagation steps set)")
        self.model, self.cfg = model, cfg
        self.propagate = get_propagator(cfg.propagation.propagator)
        self._cond = None
        self._plans: dict = {}

    # --- construction ---------------------------------------------------------------------------
    @classmethod
    def from_weights(cls, weights_dir, cfg: RunConfig = RunConfig(), backend: BackendConfig = BackendConfig(),
                     vae: str = "3d") -> "Upscaler":
        model = load_model(weights_dir, backend, vae=vae, with_raft=bool(cfg.sampler.propagation_steps),
                           raft_iters=cfg.propagation.raft_iters)
        return cls(model, cfg)

    @classmethod
    def demo(cls, cfg: RunConfig = RunConfig(), backend: BackendConfig = BackendConfig(), vae: str = "3d",
             seed: int = 0) -> "Upscaler":
        """The tiny seeded demo model (see uavrt.models.demo)."""
        from ..models.demo import demo_weights_dir
        up = cls.from_weights(demo_weights_dir(seed, with_raft=bool(cfg.sampler.propagation_steps)), cfg, backend, vae)
        up.model.info["demo"] = True
        return up

    def with_config(self, cfg: RunConfig) -> "Upscaler":
        """Same loaded model, other run settings (networks are shared, not reloaded)."""
        return Upscaler(self.model, cfg)

    @property
    def info(self) -> dict:
        return self.model.info

    # --- per run -------------------------------------------------------------------------------
    def conditioning(self) -> pl.Conditioning:
        if self._cond is None:  # the prompt is encoded once per upscaler
            s, text, device = self.cfg.sampler, self.model.text, self.model.device
            cond = text.encode(s.full_prompt).to(device)
            uncond = text.encode(s.negative_prompt).to(device) if s.guided else None
            self._cond = pl.Conditioning(cond, uncond)
        return self._cond

    def plan(self, frames: int, height: int, width: int):
        """The WindowPlan of a window of this shape (built once, then reused)."""
        key = (frames, height, width)
        if key not in self._plans:
            budget = None
            if self.cfg.unet_batch is None:  # batch from a share of the device's free memory
                from .batching import device_budget_bytes
                budget = device_budget_bytes(self.model.device)
            self._plans[key] = plan_window(self.cfg, self.model.ddim, frames, height, width, self.model.device,
                                           budget_bytes=budget)
        return self._plans[key]

    def upscale_tensor(self, low_res: torch.Tensor, first_index: int, progress: Callable | None = None):
        """low_res [1, 3, T, h, w] in [-1, 1] on the model's device (frames first_index..) ->
        video [1, 3, T, 4h, 4w] in [-1, 1]."""
        T, h, w = low_res.shape[2:]
        cfg, model = self.cfg, self.model
        seed = cfg.sampler.seed
        latents = torch.stack([frame_noise(seed, first_index + i, (4, h, w), 0) for i in range(T)], 1)[None]
        lr_noise = torch.stack([frame_noise(seed, first_index + i, (3, h, w), 1) for i in range(T)], 1)[None]
        latents, lr_noise = latents.to(model.device), lr_noise.to(model.device)
        flows = self.flows(low_res) if (cfg.sampler.propagation_steps and T > 1) else None
        video = pl.run_window(model, cfg, self.plan(T, h, w), self.conditioning(), low_res, latents, lr_noise,
                              flows, progress, self.propagate)
        return self.color_fix(video, low_res)

    def flows(self, low_res):
        from .flow import bidirectional_flows
        raft = self.model.raft
        return bidirectional_flows(low_res, lambda a, b: raft(image1=a, image2=b)["flow_up"],
                                   fix_resize=self.cfg.propagation.fix_flow_resize)

    def color_fix(self, video, low_res):
        if self.cfg.decode.color_fix == "none":
            return video
        from ..models.color import color_fix
        fixed = color_fix(video[0].transpose(0, 1), low_res[0].transpose(0, 1), self.cfg.decode.color_fix)
        return fixed.transpose(0, 1)[None]

    def process_window(self, chunk: np.ndarray, span: Span, float_frames=frozenset(),
                       progress: Callable | None = None) -> WindowOutput:
        """One window: uint8 [T, h, w, 3] frames span.start.. -> WindowOutput (uint8 frames, float
        copies of `float_frames` for the cross-fade)."""
        x = torch.from_numpy(np.ascontiguousarray(chunk))  # [T, h, w, 3] uint8: 1/4 the bytes of fp32
        if self.model.device.type == "cuda":  # pinned: the copy is a DMA that overlaps host work
            x = x.pin_memory().to(self.model.device, non_blocking=True)
        else:
            x = x.to(self.model.device)
        low_res = (x.permute(3, 0, 1, 2)[None].float() / 255.0 - 0.5) * 2.0  # [1, 3, T, h, w]
        video = self.upscale_tensor(low_res, span.start, progress)
        frames = to_uint8(video).cpu().numpy()
        blend = {f: video[0, :, f - span.start].permute(1, 2, 0).float().cpu().numpy() for f in sorted(float_frames)}
        return WindowOutput(span, frames, blend)

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

    def local_submit(self, progress: Callable | None = None) -> Callable:
        """The default `submit` of runtime/stream.windowed: each window computed here, now.

        Progress events (kind, done, total): ("window_started" | "window_finished", span.start,
        span.stop), ("step", i, steps) from the loop, ("frames", span.stop, None) once a window
        is done. Wrap it to send windows elsewhere or to keep them (runtime/jobstate.py).
        """
        def local(chunk, span, float_frames):
            if progress:
                progress("window_started", span.start, span.stop)
            out = self.process_window(chunk, span, float_frames, progress)
            if progress:
                progress("window_finished", span.start, span.stop)
                progress("frames", span.stop, None)
            return Done(out)
        return local

    def stream(self, frames: Iterable[np.ndarray], progress: Callable | None = None, submit: Callable | None = None,
               in_flight: int = 1, overlap: bool = False, first_index: int = 0,
               eager: bool = True) -> Iterator[np.ndarray]:
        """uint8 [h, w, 3] frames in, uint8 [4h, 4w, 3] frames out, in order, in bounded memory.

        submit: where windows run (default: here, now); see runtime/stream.windowed.
        overlap: run the windows on one worker thread, two in flight, so that reading (decoding)
        the next window's frames and consuming (encoding) the previous window's output happen on
        this thread while the networks run. Same computations, same output; holds one more
        window of input and output in memory.
        first_index: the absolute index of the first frame (a segment of a longer video): noise
        is drawn per absolute frame index, so a frame gets the noise it gets in the full run.
        eager (default): each frame is yielded as soon as no later window can change it, before
        the input is asked for anything more (with in_flight=1); the frames a later window might
        still cover cross the device edge in float32 and wait on the host. eager=False reads one
        window ahead instead, so only the cross-fade frames are float (what upscale_file and the
        overlapped path use: less traffic, later frames). Same output either way.
        """
        if overlap and submit is None:
            yield from self._overlapped(frames, progress, first_index)
            return
        first = {}

        def checked():
            for i, f in enumerate(frames):
                self.check_frame(f, first_index + i, first.get("shape"))
                first.setdefault("shape", f.shape)
                yield f

        w = self.cfg.window
        yield from windowed(checked(), submit or self.local_submit(progress), w.frames, w.overlap, in_flight,
                            first_index, eager)

    def threaded_submit(self, pool, progress=None) -> Callable:
        """A submit running each window on `pool` (a concurrent.futures executor): its Future is
        the handle."""
        local = self.local_submit(progress)
        return lambda chunk, span, float_frames: pool.submit(lambda: local(chunk, span, float_frames).result())

    def _overlapped(self, frames, progress, first_index=0):
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="uavrt-window") as pool:
            yield from self.stream(frames, progress, submit=self.threaded_submit(pool, progress), in_flight=2,
                                   first_index=first_index, eager=False)
