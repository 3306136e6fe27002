"""Folders of still images as a video: natural ordering, decoding and PNG writing."""

from __future__ import annotations

import re
import struct
from pathlib import Path

import av
import numpy as np

from ...errors import InputError
from .color import frame_to_rgb24
from .orientation import frame_orientation

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".tga",
                            ".ppm", ".pgm", ".pnm", ".exr", ".dpx"})


def natural_key(name: str):
    """'frame2' < 'frame10': digit runs compare as numbers, the rest case-insensitively."""
    return [(0, int(tok), tok) if tok.isdigit() else (1, tok.lower(), tok)
            for tok in re.split(r"(\d+)", name)]


def list_images(folder: Path) -> list[Path]:
    """Image files directly in `folder`, naturally sorted (hidden files ignored)."""
    files = [p for p in folder.iterdir()
             if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES]
    files.sort(key=lambda p: natural_key(p.name))
    if not files:
        raise InputError(f"input folder {str(folder)!r} holds no images "
                         f"(looked for {', '.join(sorted(IMAGE_SUFFIXES))})")
    return files


def open_image(path: Path):
    """Open one image file with FFmpeg; errors name the file."""
    try:
        container = av.open(str(path))
    except (av.FFmpegError, ValueError) as e:
        raise InputError(f"image {str(path)!r} cannot be read: {e}") from e
    if not container.streams.video:
        container.close()
        raise InputError(f"image {str(path)!r} holds no picture")
    return container


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) as stored, from the header only: the folder check must stay cheap.

    PNG is parsed directly; other formats through Pillow when installed (lazy, header-only),
    else FFmpeg (which decodes the picture to probe it: slower, same answer).
    """
    with open(path, "rb") as fh:
        head = fh.read(24)
    if head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR":
        return struct.unpack(">II", head[16:24])
    try:
        from PIL import Image
        with Image.open(path) as im:
            return im.size
    except Exception:  # no Pillow, or a format it does not know: ask FFmpeg
        pass
    with open_image(path) as c:
        s = c.streams.video[0]
        size = s.codec_context.width, s.codec_context.height
    if 0 in size:  # FFmpeg opened it (e.g. by its name) but found no picture in it
        raise InputError(f"image {str(path)!r} is not a readable image (no picture size in it; damaged, "
                         "or not the format its name says)")
    return size


def decode_image(path: Path):
    """-> (first VideoFrame, stream metadata, codec name) of an image file."""
    with open_image(path) as c:
        stream = c.streams.video[0]
        try:
            for frame in c.decode(stream):
                return frame, dict(stream.metadata), stream.codec_context.codec.canonical_name
        except av.FFmpegError as e:
            raise InputError(f"image {str(path)!r} is corrupt: {e}") from e
    raise InputError(f"image {str(path)!r} decodes to no picture")


def read_image(path: Path) -> np.ndarray:
    """Image file -> upright [H, W, 3] uint8 RGB (alpha dropped, orientation applied)."""
    frame, meta, _ = decode_image(path)
    return frame_orientation(frame, meta).apply(frame_to_rgb24(frame))


class PngEncoder:
    """Encodes RGB arrays to PNG bytes with FFmpeg's png encoder (lossless)."""

    def __init__(self):
        self._ctx = None
        self._size = None

    def encode(self, rgb: np.ndarray) -> bytes:
        h, w = rgb.shape[:2]
        if self._ctx is None or self._size != (w, h):
            # PNG is intra-only: a fresh context per size keeps no state between frames.
            self._ctx = av.CodecContext.create("png", "w")
            self._ctx.width, self._ctx.height, self._ctx.pix_fmt = w, h, "rgb24"
            self._ctx.time_base = 1
            self._size = (w, h)
        packets = self._ctx.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24"))
        return b"".join(bytes(p) for p in packets)
