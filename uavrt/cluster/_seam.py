"""PROVISIONAL stand-in for the seam landing on main (runtime/stream.windowed with submit,
Upscaler.process_window, upscale_file(submit=, in_flight=)); deleted when main has it."""

from __future__ import annotations

import collections
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import InputError
from ..runtime.plan import Span, crossfade_weight, window_span


@dataclass
class WindowOutput:
    span: Span
    frames: np.ndarray
    blend: dict


def _finish(frame):
    return (np.clip(frame / np.float32(2) + np.float32(0.5), 0, 1) * np.float32(255)).astype(np.uint8)


def process_window(up, chunk, span, float_frames):
    x = torch.from_numpy(np.ascontiguousarray(chunk)).to(up.nets.device)
    low_res = (x.permute(3, 0, 1, 2)[None].float() / 255.0 - 0.5) * 2.0
    video = up.upscale_window(low_res, span.start, None)
    v = video[0].permute(1, 2, 3, 0).float().cpu().numpy()
    frames = np.stack([_finish(f) for f in v])
    blend = {f: v[i] for i, f in enumerate(span) if f in float_frames}
    return WindowOutput(span, frames, blend)


def windowed(frames, submit, window, overlap, in_flight=1):
    it = iter(frames)
    buf, st = {}, {"n": 0, "eof": False}

    def span(k):
        need = k * (window - overlap) + window
        while not st["eof"] and st["n"] < need:
            try:
                buf[st["n"]] = next(it)
                st["n"] += 1
            except StopIteration:
                st["eof"] = True
        if st["n"] == 0:
            return None
        return window_span(k, st["n"], st["eof"], window, overlap)

    queue = collections.deque()
    pend, state = {}, {"emitted": 0, "prev": None}

    def consume():
        sp, h, limit = queue.popleft()
        out = h.result()
        for i, f in enumerate(sp):
            if f in out.blend:
                if f in pend:
                    w = crossfade_weight(f, state["prev"], sp)
                    pend[f] = (1 - w) * pend[f] + w * out.blend[f]
                else:
                    pend[f] = out.blend[f]
            else:
                pend[f] = out.frames[i]
        state["prev"] = sp
        for f in range(state["emitted"], limit):
            v = pend.pop(f)
            yield v if v.dtype == np.uint8 else _finish(v)
        state["emitted"] = max(state["emitted"], limit)

    k, prev, cur = 0, None, span(0)
    while cur is not None:
        nxt = span(k + 1)
        ff = frozenset(f for f in cur if (prev is not None and f < prev.stop) or (nxt is not None and f >= nxt.start))
        chunk = np.stack([buf[f] for f in cur])
        limit = nxt.start if nxt is not None else cur.stop
        queue.append((cur, submit(chunk, cur, ff), limit))
        for f in [f for f in buf if f < limit]:
            del buf[f]
        while len(queue) >= in_flight:
            yield from consume()
        prev, cur, k = cur, nxt, k + 1
    while queue:
        yield from consume()


class _Local:
    def __init__(self, out):
        self.out = out

    def result(self):
        return self.out


def stream(up_cfg, frames, progress=None, submit=None, in_flight=1, check=None):
    w = up_cfg.window
    yield from windowed(frames, submit, w.frames, w.overlap, in_flight)


def upscale_file(driver, src, dst, out, progress=None, submit=None, in_flight=1):
    from ..fsutil import check_writable
    from ..runtime.files import DEFAULT_IMAGE_FPS
    from ..runtime.video import VideoWriter, is_folder_target, open_frames
    from pathlib import Path
    if not is_folder_target(dst):
        check_writable(dst, out.overwrite)
    if submit is None:
        submit = lambda c, s, f: _Local(process_window(driver, c, s, f))  # noqa: E731
    with open_frames(src) as reader:
        info = reader.info
        if progress:
            progress("video", 0, info.num_frames)
        pts = collections.deque()

        def frames():
            for fr in reader:
                pts.append(fr.pts)
                yield fr.rgb

        fps = info.fps or out.fps or DEFAULT_IMAGE_FPS
        with VideoWriter(dst, fps=fps, time_base=info.time_base, codec=out.codec, crf=out.crf,
                         overwrite=out.overwrite,
                         copy_streams_from=None if info.is_image_sequence else str(src)) as writer:
            n = 0
            for frame in stream(driver.cfg, frames(), progress, submit, in_flight):
                writer.write(frame, pts.popleft())
                n += 1
            if n == 0:
                raise InputError(f"{str(src)!r} has no frames")
    return Path(dst)
