"""Display orientation: turn decoded frames upright the way FFmpeg's own player/CLI does.

Containers store rotation as a 3x3 "display matrix" (MP4 tkhd, Matroska projection, EXIF...);
FFmpeg decoders attach it to every frame as side data. We reduce it to one of the eight
right-angle orientations, written as `rotate clockwise by rotation_cw, then mirror left-right`.
Arbitrary angles are not right-angle permutations of the pixel grid; they are ignored (logged).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Orientation:
    rotation_cw: int = 0  # 0, 90, 180, 270
    mirror: bool = False  # mirror left-right after the rotation

    @property
    def swaps_axes(self) -> bool:
        return self.rotation_cw in (90, 270)

    def apply(self, rgb: np.ndarray) -> np.ndarray:
        """rgb: [H, W, C] -> upright [H', W', C] (C-contiguous copy only when something changed)."""
        if self.rotation_cw == 0 and not self.mirror:
            return rgb
        out = np.rot90(rgb, k=-(self.rotation_cw // 90))  # np.rot90 turns counter-clockwise for k > 0
        if self.mirror:
            out = out[:, ::-1]
        return np.ascontiguousarray(out)


def from_display_matrix(m) -> Orientation:
    """m: 9 int32 in FFmpeg's AV_PKT_DATA_DISPLAYMATRIX layout (16.16 fixed point, row-major).

    Same decision table as the ffmpeg CLI's autorotate (theta = clockwise angle), so our frames
    match what FFmpeg-based players show.
    """
    a, b, c, d = (float(m[i]) for i in (0, 1, 3, 4))
    sx, sy = math.hypot(a, c), math.hypot(b, d)
    if sx == 0 or sy == 0:  # degenerate matrix: ignore rather than guess
        return Orientation()
    ccw = math.degrees(math.atan2(b / sy, a / sx)) * -1.0  # av_display_rotation_get()
    theta = -round(ccw)
    theta -= 360 * math.floor(theta / 360 + 0.9 / 360)  # into [0, 360)
    if abs(theta - 90) < 1:
        return Orientation(90, mirror=c > 0)  # c > 0: transpose ("cclock_flip")
    if abs(theta - 270) < 1:
        return Orientation(270, mirror=c < 0)  # c < 0: anti-transpose ("clock_flip")
    if abs(theta - 180) < 1:
        hflip, vflip = a < 0, d < 0
        if hflip and vflip:
            return Orientation(180)
        return Orientation(180, mirror=True) if vflip else Orientation(0, mirror=hflip)
    if abs(theta) < 1 or abs(theta - 360) < 1:
        return Orientation(180, mirror=True) if d < 0 else Orientation()  # vflip = rot180 + mirror
    log.warning("display matrix rotates by %.1f degrees (not a multiple of 90): ignored", theta)
    return Orientation()


def from_rotate_tag(tag) -> Orientation:
    """Legacy `rotate` metadata tag: clockwise degrees."""
    try:
        deg = int(float(tag)) % 360
    except (TypeError, ValueError):
        return Orientation()
    if deg % 90:
        log.warning("rotate tag %r is not a multiple of 90 degrees: ignored", tag)
        return Orientation()
    return Orientation(deg)


def frame_orientation(frame, stream_metadata) -> Orientation:
    """Orientation of a decoded PyAV VideoFrame: its display-matrix side data, else the tag."""
    for sd in frame.side_data:
        if getattr(sd.type, "name", str(sd.type)).endswith("DISPLAYMATRIX"):
            m = np.frombuffer(memoryview(sd), dtype=np.int32)
            if m.size >= 9:
                return from_display_matrix(m)
    return from_rotate_tag(stream_metadata.get("rotate")) if "rotate" in stream_metadata else Orientation()
