"""Small synthetic videos for tests and demos: a deterministic pattern, written with PyAV.

Used by the video tests and handy for end-to-end tests elsewhere: no sample files needed.
"""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np


def pattern_frame(index: int, width: int, height: int) -> np.ndarray:
    """[H, W, 3] uint8: ramps that move with `index`, a bright top-left marker, seeded noise.

    Asymmetric on purpose, so any rotation or mirroring changes it.
    """
    y, x = np.mgrid[0:height, 0:width]
    rgb = np.empty((height, width, 3), np.uint8)
    rgb[..., 0] = (x * 255 // max(1, width - 1) + 7 * index) % 256
    rgb[..., 1] = (y * 255 // max(1, height - 1)) % 256
    rgb[..., 2] = np.random.default_rng(index).integers(0, 256, (height, width), dtype=np.uint8)
    rgb[: max(1, height // 6), : max(1, width // 5)] = (255, 255, 255)
    return rgb


def write_test_video(path, *, frames: int = 8, width: int = 64, height: int = 48, fps=Fraction(10),
                     codec: str = "ffv1", pix_fmt: str = "bgr0", pts: list[int] | None = None,
                     time_base: Fraction | None = None, audio: str | None = None,
                     subtitles: list[tuple[float, float, str]] | None = None, rotation: int = 0,
                     hflip: bool = False, options: dict | None = None,
                     container_options: dict | None = None, images: list[np.ndarray] | None = None,
                     metadata: dict | None = None) -> list[np.ndarray]:
    """Write a small video; returns the RGB frames that went in.

    pts: explicit (variable-rate) timestamps in `time_base` units. audio: an encoder name
    ("aac", "pcm_s16le") for a mono 8 kHz tone as long as the video. subtitles:
    (start_s, end_s, text) cues, muxed as SubRip (Matroska) or mov_text (MP4) packets.
    rotation/hflip: display-matrix metadata (counter-clockwise degrees, as FFmpeg stores them).
    images: frames to write instead of the test pattern. metadata: container tags (title...).
    """
    fps = Fraction(fps)
    tb = time_base or 1 / fps
    rgbs = images if images is not None else [pattern_frame(i, width, height) for i in range(frames)]
    out = av.open(str(path), "w", container_options=container_options or {})
    out.metadata.update(metadata or {})
    v = out.add_stream(codec, rate=fps, options=options or {})
    v.width, v.height, v.pix_fmt = rgbs[0].shape[1], rgbs[0].shape[0], pix_fmt
    v.codec_context.time_base = tb
    v.time_base = tb
    if rotation or hflip:
        v.set_display_rotation(rotation, hflip=hflip)
    a = out.add_stream(audio, rate=8000, layout="mono") if audio else None
    s = None
    if subtitles:
        s = out.add_mux_stream("mov_text" if out.format.name in ("mp4", "mov") else "subrip")
    for i, rgb in enumerate(rgbs):
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
        frame.pts = pts[i] if pts is not None else round(i / (fps * tb))
        frame.time_base = tb
        for p in v.encode(frame):
            out.mux(p)
    for p in v.encode(None):
        out.mux(p)
    if a is not None:
        _write_tone(out, a, seconds=len(rgbs) / fps)
    if s is not None:
        for start, end, text in subtitles:
            payload = text.encode()
            if out.format.name in ("mp4", "mov"):  # mov_text sample: 16-bit length + text
                payload = len(payload).to_bytes(2, "big") + payload
            pkt = av.Packet(payload)
            pkt.stream, pkt.time_base = s, Fraction(1, 1000)
            pkt.pts = pkt.dts = round(start * 1000)
            pkt.duration = round((end - start) * 1000)
            out.mux(pkt)
    out.close()
    return rgbs


def _write_tone(out, stream, seconds: Fraction, rate: int = 8000) -> None:
    total = int(seconds * rate)
    t = np.arange(total)
    samples = (np.sin(2 * np.pi * 440 * t / rate) * 8000).astype(np.int16)
    fmt = "fltp" if stream.codec_context.name == "aac" else "s16"
    for start in range(0, total, 1024):
        chunk = samples[start:start + 1024][None]
        data = (chunk.astype(np.float32) / 32768) if fmt == "fltp" else chunk
        frame = av.AudioFrame.from_ndarray(data, format=fmt, layout="mono")
        frame.sample_rate, frame.pts = rate, start
        for p in stream.encode(frame):
            out.mux(p)
    for p in stream.encode(None):
        out.mux(p)


def write_yuv_video(path, y: np.ndarray, u: np.ndarray, v: np.ndarray, *, color_range: int,
                    colorspace: int = 1, frames: int = 2, fps=Fraction(10), codec: str = "ffv1",
                    pix_fmt: str = "yuv420p", options: dict | None = None) -> None:
    """Lossless 4:2:0 video from exact planes with the given range/matrix tags.

    color_range: 1 = limited ("tv"), 2 = full ("pc"). colorspace: AVColorSpace (1 = BT.709).
    codec/pix_fmt/options: e.g. "libx264", "yuvj420p", {"qp": "0"} for the legacy full-range
    pixel format that JPEG-derived camera clips use.
    """
    h, w = y.shape
    out = av.open(str(path), "w")
    s = out.add_stream(codec, rate=fps, options=options or {})
    s.width, s.height, s.pix_fmt = w, h, pix_fmt
    s.codec_context.color_range, s.codec_context.colorspace = color_range, colorspace
    for i in range(frames):
        frame = av.VideoFrame(w, h, pix_fmt)
        for plane, data in zip(frame.planes, (y, u, v)):
            buf = np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)
            buf[: data.shape[0], : data.shape[1]] = data
        frame.color_range, frame.colorspace, frame.pts = color_range, colorspace, i
        for p in s.encode(frame):
            out.mux(p)
    for p in s.encode(None):
        out.mux(p)
    out.close()
