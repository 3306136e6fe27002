"""Stage timing by wrapping what the runtime calls, never by copying the runtime.

The pipeline only sees Runners (`runner(**inputs) -> dict`), a `propagate` callable and a text
encoder with `.encode(prompt)`. Each is replaced by a proxy that forwards the call and adds its
duration to a `StageClock`; `Upscaler.flows` (RAFT + flow resize) and `Upscaler.color_fix` are
timed by a subclass that calls the original method. On a GPU every timed call is bracketed by
`torch.cuda.synchronize()`, so asynchronous kernels are charged to the stage that launched them
(it costs a little overlap: that is the price of honest per-stage numbers).

Stages are disjoint by construction (no timed call runs inside another), so their sum can be
compared with the wall time of the run: the remainder is the untimed glue (noise draws,
scheduler arithmetic, clip/tile merging, frame conversion).
"""

from __future__ import annotations

import dataclasses
import time
from collections import defaultdict
from typing import Callable

import torch

# Stage names in pipeline order (reports and charts keep this order).
STAGES = ("video_decode", "text_encode", "raft", "unet", "propagation", "vae_decode", "color_fix",
          "video_encode")


def make_sync(device) -> Callable[[], None]:
    """A barrier for `device`: waits for queued GPU work (all streams); a no-op on the CPU."""
    device = torch.device(device)
    if device.type == "cuda":
        return lambda: torch.cuda.synchronize(device)
    return lambda: None


class StageClock:
    """Seconds and call counts per stage for one run; also the shapes of the U-Net calls."""

    def __init__(self, sync: Callable[[], None] = lambda: None):
        self.sync = sync
        self.seconds: dict = defaultdict(float)
        self.calls: dict = defaultdict(int)
        self.unet_shapes: list = []  # (B, T, H, W, L) of every U-Net call, for FLOP counting
        self.prop_shapes: list = []  # ((B, C, T, h, w), dtype) of every propagation call

    def reset(self):
        self.seconds.clear()
        self.calls.clear()
        self.unet_shapes.clear()
        self.prop_shapes.clear()

    def timed(self, stage: str, fn: Callable, *args, **kwargs):
        self.sync()
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            self.sync()
            self.seconds[stage] += time.perf_counter() - t0
            self.calls[stage] += 1


class TimedRunner:
    """A Runner proxy: same attributes (`spec`, `device`, `owns_outputs`, ...), timed calls."""

    def __init__(self, inner, clock: StageClock, stage: str):
        self._inner, self._clock, self._stage = inner, clock, stage

    def __getattr__(self, name):  # spec, device, precision, owns_outputs, module, ...
        return getattr(self._inner, name)

    def __call__(self, **inputs):
        if self._stage == "unet":
            b, _, t, h, w = inputs["sample"].shape
            self._clock.unet_shapes.append((b, t, h, w, inputs["encoder_hidden_states"].shape[1]))
        return self._clock.timed(self._stage, self._inner, **inputs)


class TimedPropagate:
    """The `propagate(x0, flows_forward, flows_backward, **options)` callable, timed."""

    def __init__(self, inner: Callable, clock: StageClock):
        self._inner, self._clock = inner, clock

    def __call__(self, x, flows_forward, flows_backward, **options):
        self._clock.prop_shapes.append((tuple(x.shape), x.dtype))
        return self._clock.timed("propagation", self._inner, x, flows_forward, flows_backward, **options)


class TimedText:
    """A TextEncoder proxy whose `encode` is timed (everything else forwarded)."""

    def __init__(self, inner, clock: StageClock):
        self._inner, self._clock = inner, clock

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def encode(self, prompt: str):
        return self._clock.timed("text_encode", self._inner.encode, prompt)


def timed_upscaler(upscaler, clock: StageClock):
    """A fresh Upscaler on the same loaded networks whose every stage reports to `clock`.

    Fresh on purpose: the prompt embedding is cached per Upscaler, and a real run encodes it
    once, so every measured run pays for it once.
    """
    from ..runtime.upscaler import Upscaler

    class _Timed(Upscaler):
        def __init__(self, model, cfg):
            super().__init__(model, cfg)
            self.propagate = TimedPropagate(self.propagate, clock)

        def flows(self, low_res):
            return clock.timed("raft", super().flows, low_res)

        def color_fix(self, video, low_res):
            return clock.timed("color_fix", super().color_fix, video, low_res)

    m = upscaler.model
    # RAFT calls happen inside Upscaler.flows, which is timed as a whole ("raft"); timing the
    # runner too would count those seconds twice.
    model = dataclasses.replace(m, unet=TimedRunner(m.unet, clock, "unet"), vae=TimedRunner(m.vae, clock, "vae_decode"),
                                text=TimedText(m.text, clock), info=dict(m.info))
    return _Timed(model, upscaler.cfg)


class TimedFrames:
    """Iterate a frame reader, charging each decode (the `next()` call) to `video_decode`."""

    def __init__(self, reader, clock: StageClock, pts_out: list):
        self._it, self._clock, self._pts = iter(reader), clock, pts_out

    def __iter__(self):
        return self

    def __next__(self):
        frame = self._clock.timed("video_decode", next, self._it)
        self._pts.append(frame.pts)
        return frame.rgb
