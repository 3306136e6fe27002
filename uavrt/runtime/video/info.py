"""What the runtime knows about an input video, and the unit it streams: one decoded frame."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import NamedTuple

import numpy as np


@dataclass(frozen=True)
class VideoInfo:
    """Facts about an input, as `probe()` finds them.

    width/height are the DISPLAY size: after the rotation metadata is applied, i.e. the size of
    the arrays the reader yields. `rotation` is the clockwise rotation (0/90/180/270) that was
    applied to make the frames upright (the value of the legacy `rotate` tag).
    `fps` is FFmpeg's guess of the nominal rate (r_frame_rate); `avg_fps` is frames/duration.
    For variable-frame-rate input the timestamps (Frame.pts in `time_base` units) are the truth.
    `num_frames` is the container's count of frames that will be shown (edit-list-discarded
    samples excluded) when the container has one, else None.
    """

    path: str
    width: int
    height: int
    num_frames: int | None
    fps: Fraction | None
    time_base: Fraction | None
    rotation: int
    codec: str
    pix_fmt: str
    color_range: str | None  # "tv" (limited) / "pc" (full) / None (unspecified)
    has_audio: bool
    has_subtitles: bool
    duration_s: float | None
    is_image_sequence: bool
    avg_fps: Fraction | None = None
    color_space: str | None = None  # matrix used to convert to RGB ("bt709", "bt601", ...)
    container: str | None = None  # demuxer name, e.g. "mov,mp4,m4a,3gp,3g2,mj2"
    sample_aspect_ratio: Fraction | None = None  # pixel shape after rotation; None = square


class Frame(NamedTuple):
    """One upright RGB frame. pts is in VideoInfo.time_base units, None when not known."""

    rgb: np.ndarray  # [H, W, 3] uint8, C-contiguous
    pts: int | None
    index: int  # 0-based position in the stream
