"""Overlapped I/O (Upscaler.stream(overlap=True)): windows on a worker thread, two in flight."""

from __future__ import annotations

import threading

import numpy as np

from fakes import fake_model
from uavrt.config import RunConfig, SamplerConfig, TileConfig, WindowConfig
from uavrt.runtime.upscaler import Upscaler


class _Text:
    """Prompt -> embeddings [1, L, C] that differ per prompt (a strict stand-in for TextEncoder.encode)."""

    def encode(self, prompt):
        import torch
        return torch.full((1, 4, 8), float(len(prompt)) / 10)


def _frames(n, h=8, w=8):
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(n)]


def test_overlapped_stream_equals_serial_and_runs_networks_off_the_caller_thread():
    cfg = RunConfig(sampler=SamplerConfig(steps=2, guidance_scale=6.0), tiles=TileConfig(mode="blend"),
                    window=WindowConfig(frames=6, overlap=2))
    up = Upscaler(fake_model(text=_Text()), cfg)
    frames = _frames(15)  # 3+ windows with cross-fades
    serial = list(up.stream(iter(frames)))
    threads = set()
    inner = up.model.unet._run

    def recording(x):
        threads.add(threading.current_thread().name)
        return inner(x)

    up.model.unet._run = recording
    read = []

    def source():
        for i, f in enumerate(frames):
            read.append(i)
            yield f

    overlapped = list(up.stream(source(), overlap=True))
    assert len(overlapped) == len(serial) == 15
    for a, b in zip(serial, overlapped):
        assert a.dtype == np.uint8 and np.array_equal(a, b)
    assert threads and all(t.startswith("uavrt-window") for t in threads)
    assert read == list(range(15))
