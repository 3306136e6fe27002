"""File-to-file upscaling: decode -> Upscaler.stream -> encode, atomically, with audio copied."""

from __future__ import annotations

import collections
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Callable

from ..errors import InputError
from ..fsutil import check_writable

VIDEO_SUFFIXES = (".mp4", ".mkv", ".mov", ".avi", ".webm", ".m4v", ".mpg", ".mpeg", ".ts", ".flv", ".wmv")


DEFAULT_IMAGE_FPS = Fraction(30)  # the release writes image-folder inputs at 30 fps


@dataclass(frozen=True)
class OutputConfig:
    codec: str = "libx264"
    crf: int | None = None
    overwrite: bool = False
    fps: Fraction | None = None  # only for inputs without a rate (image folders)


def upscale_file(upscaler, src, dst, out: OutputConfig = OutputConfig(), progress: Callable | None = None,
                 submit: Callable | None = None, in_flight: int = 1) -> Path:
    """Decode `src`, upscale (windows run where `submit` sends them; see runtime/stream.py),
    encode to `dst` atomically with audio/subtitles copied."""
    from .video import VideoWriter, is_folder_target, open_frames
    if not is_folder_target(dst):  # refuse before any work (a folder target: the writer decides)
        check_writable(dst, out.overwrite)
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
            for frame in upscaler.stream(frames(), progress, submit=submit, in_flight=in_flight):
                writer.write(frame, pts.popleft())
                n += 1
            if n == 0:
                raise InputError(f"{str(src)!r} has no frames")
    return Path(dst)


def list_inputs(src) -> list:
    """A video file, an image folder, or a folder of videos (each upscaled on its own)."""
    src = Path(src)
    if src.is_dir():
        videos = sorted(p for p in src.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)
        if videos:
            return videos
    return [src]
