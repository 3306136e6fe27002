"""VideoWriter: encode RGB frames as they come, atomically, with the input's timing and audio.

Output is a video file (container from the extension) or, when the path is a directory or
ends with '/', a folder of PNG frames. Nothing appears at the target until close() succeeds:
the file (folder) is written beside it under a temporary name and renamed at the end; any
failure (or abort()) removes it. An existing target is refused at construction, before any
work, unless overwrite=True.

Timing: pts are in `time_base` units (default 1/fps), normally the input's own pts so
variable-frame-rate video stays in sync; a frame written without pts is placed at
index / fps. Like ffmpeg, the output timeline starts at the first frame: every stream
(video and copied audio/subtitles) is shifted by the first frame's time, keeping their offsets.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import uuid
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from ...errors import ConfigError, InputError, OutputExistsError
from ...fsutil import atomic_path, umask
from .color import rgb24_to_frame, tag_encoder
from .encoders import FILE_CODECS, FOLDER_CODECS, check_frame_size, resolve_encoder
from .images import PngEncoder
from .passthrough import StreamCopier

log = logging.getLogger(__name__)

DEFAULT_CODEC = "libx264"
_MOV_FAMILY = ("mp4", "mov", "ipod", "3gp", "3g2", "psp", "ismv")


def _fraction(param: str, value) -> Fraction:
    try:
        frac = Fraction(value) if not isinstance(value, float) else Fraction(value).limit_denominator(1_001_000)
    except (TypeError, ValueError, ZeroDivisionError):
        raise ConfigError(param, value, "a positive rational number, e.g. Fraction(30000, 1001)") from None
    if frac <= 0:
        raise ConfigError(param, value, "a positive rational number")
    return frac


def _check_rgb(rgb) -> np.ndarray:
    if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        desc = f"{type(rgb).__name__} {getattr(rgb, 'dtype', '')} {getattr(rgb, 'shape', '')}".strip()
        raise ConfigError("rgb", desc, "a uint8 numpy array [H, W, 3]")
    if rgb.shape[0] == 0 or rgb.shape[1] == 0:
        raise ConfigError("rgb", f"shape {rgb.shape}", "a non-empty [H, W, 3] image")
    return np.ascontiguousarray(rgb)


def is_folder_target(path) -> bool:
    return str(path).endswith(("/", os.sep)) or Path(path).is_dir()


class VideoWriter:
    def __init__(self, path, *, fps, time_base=None, codec: str | None = DEFAULT_CODEC, crf: int | None = None,
                 pix_fmt: str | None = None, overwrite: bool = False, copy_streams_from: str | None = None,
                 options: dict | None = None, sample_aspect_ratio=None):
        """codec: one of encoders.ENCODERS for files. A folder target always gets PNG frames; it
        accepts codec 'png', None or the default 'libx264' (so one CLI default serves both)."""
        self.fps = _fraction("fps", fps)
        self.time_base = _fraction("time_base", time_base) if time_base is not None else 1 / self.fps
        self._default_duration = max(1, round(1 / (self.fps * self.time_base)))
        self._count = 0
        self._size = None
        self._pts0 = None
        self._last_pts = None
        self._done = False
        if is_folder_target(path):
            if codec not in (None, DEFAULT_CODEC, *FOLDER_CODECS):
                raise ConfigError("codec", codec, "None or 'png' for an output folder "
                                  f"(video files take {', '.join(FILE_CODECS)})")
            if crf is not None or pix_fmt not in (None, "rgb24") or options:
                raise ConfigError("crf/pix_fmt/options", (crf, pix_fmt, options),
                                  "None for an output folder (PNG frames are lossless rgb24)")
            if copy_streams_from:
                log.warning("output %s is a folder of PNG frames: audio/subtitles of %s are not kept",
                            path, copy_streams_from)
            self._sink = _PngFolderSink(path, overwrite)
        else:
            choice = resolve_encoder(codec or DEFAULT_CODEC, crf, pix_fmt, options)
            self._sink = _ContainerSink(path, choice, self.fps, self.time_base, overwrite,
                                        copy_streams_from, sample_aspect_ratio)
        self.path = self._sink.target

    # -- phase: write -------------------------------------------------------------------------
    def write(self, rgb: np.ndarray, pts: int | None = None, duration: int | None = None) -> None:
        """rgb: [H, W, 3] uint8; pts/duration in time_base units (None: from index and fps)."""
        if self._done:
            raise RuntimeError(f"VideoWriter for {str(self.path)!r} is already closed")
        rgb = _check_rgb(rgb)
        h, w = rgb.shape[:2]
        if self._size is None:
            self._sink.start(w, h)
            self._size = (w, h)
        elif self._size != (w, h):
            raise ConfigError("rgb", f"{w}x{h} frame", f"every frame {self._size[0]}x{self._size[1]} "
                              "like the first (one output has one size)")
        pts = self._next_pts(pts)
        dur = self._default_duration if duration is None else int(duration)
        self._sink.write(rgb, pts - self._pts0, dur, self._pts0 * self.time_base, self.time_base)
        self._last_pts = pts
        self._count += 1

    def _next_pts(self, pts) -> int:
        if pts is None:
            base = self._pts0 if self._pts0 is not None else 0
            pts = base + round(self._count / (self.fps * self.time_base))
            if self._last_pts is not None and pts <= self._last_pts:
                pts = self._last_pts + 1
        else:
            if isinstance(pts, bool) or not isinstance(pts, (int, np.integer)):
                raise ConfigError("pts", pts, "an int in time_base units, or None")
            pts = int(pts)
            if self._last_pts is not None and pts <= self._last_pts:
                raise ConfigError("pts", pts, f"a value greater than the previous frame's pts {self._last_pts} "
                                  "(presentation order, strictly increasing)")
        if self._pts0 is None:
            self._pts0 = pts
        return pts

    # -- phase: finish ------------------------------------------------------------------------
    def close(self) -> Path:
        """Flush, finalize and rename into place; returns the final path."""
        if self._done:
            return self.path
        if self._count == 0:
            self.abort()
            raise InputError(f"no frames were written to {str(self.path)!r}; nothing was created")
        try:
            self._sink.finish(self._pts0 * self.time_base)
        except BaseException:
            self.abort()
            raise
        self._done = True
        return self.path

    def abort(self) -> None:
        """Drop everything written so far; the target is left as it was. Idempotent."""
        if not self._done:
            self._done = True
            self._sink.abort()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            self.abort()
        else:
            self.close()
        return False

    def __del__(self):
        if not getattr(self, "_done", True) and hasattr(self, "_sink"):
            try:
                self._sink.abort()
                log.warning("VideoWriter for %s was never closed; its partial output was removed", self.path)
            except Exception:  # interpreter shutdown: nothing sensible left to do
                pass


class _ContainerSink:
    """One encoded video stream (+ copied streams) in a temp file renamed on success."""

    def __init__(self, path, choice, fps: Fraction, time_base: Fraction, overwrite: bool,
                 copy_from, sar):
        self.target = Path(path)
        self._choice = choice
        self._atomic = atomic_path(self.target, overwrite)
        tmp = self._atomic.__enter__()  # OutputExistsError here, before any work
        os.chmod(tmp, 0o666 & ~umask())  # mkstemp makes it 0600; outputs get the usual mode
        self._out = None
        self._copier = None
        try:
            self._open(tmp, fps, time_base, copy_from, sar)
        except BaseException as e:
            self.abort(e)
            raise

    def _open(self, tmp: Path, fps, time_base, copy_from, sar):
        target = self.target
        try:
            self._out = av.open(str(tmp), "w")
        except (av.FFmpegError, ValueError) as e:
            raise ConfigError("path", str(target), "a file name whose extension names a container FFmpeg "
                              "writes (.mp4, .mkv, .mov, ...), or a folder ('out/') for PNG frames") from e
        fmt_name = self._out.format.name
        codec = self._choice.spec.name
        try:
            self._stream = self._out.add_stream(codec, rate=fps, options=self._choice.options)
        except ValueError as e:
            held = self._out.supported_codecs
            ok = [c for c in FILE_CODECS if av.Codec(c, "w").canonical_name in held]
            raise ConfigError("codec", codec, f"a codec the {fmt_name} container holds: {', '.join(ok)}",
                              hint=str(e)) from e
        s = self._stream
        s.pix_fmt = self._choice.pix_fmt
        s.codec_context.time_base = time_base
        s.time_base = time_base
        s.thread_type = "AUTO"
        if self._choice.spec.mp4_tag and fmt_name in _MOV_FAMILY:
            s.codec_tag = self._choice.spec.mp4_tag
        if fmt_name in _MOV_FAMILY:
            self._out.options["movflags"] = "+faststart"  # moov first: plays while downloading
        self._sar = _fraction("sample_aspect_ratio", sar) if sar is not None else None
        if copy_from is not None:
            self._copier = StreamCopier(copy_from, self._out)

    def start(self, width: int, height: int) -> None:
        check_frame_size(width, height, self._choice.pix_fmt)
        s = self._stream
        s.width, s.height = width, height
        if self._sar is not None:
            s.codec_context.sample_aspect_ratio = self._sar
        tag_encoder(s.codec_context, self._choice.pix_fmt)

    def write(self, rgb, pts: int, duration: int, shift_s: Fraction, time_base: Fraction) -> None:
        frame = rgb24_to_frame(rgb, self._choice.pix_fmt)
        frame.pts, frame.time_base, frame.duration = pts, time_base, duration
        for packet in self._stream.encode(frame):
            self._out.mux(packet)
        if self._copier is not None:  # interleave: copied packets up to this frame's input time
            self._copier.mux_until(pts * time_base + shift_s, shift_s)

    def finish(self, shift_s: Fraction) -> None:
        for packet in self._stream.encode(None):
            self._out.mux(packet)
        if self._copier is not None:
            self._copier.mux_until(None, shift_s)
            self._copier.close()
        self._out.close()
        self._out = None
        atomic, self._atomic = self._atomic, None
        atomic.__exit__(None, None, None)  # rename into place (on failure it removes the temp)

    def abort(self, exc: BaseException | None = None) -> None:
        if self._copier is not None:
            self._copier.close()
        if self._out is not None:
            try:
                self._out.close()
            except Exception:  # header never written / encoder mid-stream: the file goes anyway
                pass
            self._out = None
        if self._atomic is not None:
            err = exc if exc is not None else RuntimeError("aborted")
            self._atomic.__exit__(type(err), err, None)  # removes the temp file
            self._atomic = None


class _PngFolderSink:
    """frame_000000.png ... in a temp folder beside the target, renamed into place at the end."""

    def __init__(self, path, overwrite: bool):
        self.target = Path(str(path).rstrip("/" + os.sep) or str(path))
        self._overwrite = overwrite
        self._check_target()  # before any work
        self.target.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = Path(tempfile.mkdtemp(prefix=f".{self.target.name}.partial.", dir=self.target.parent))
        os.chmod(self._tmp, 0o777 & ~umask())  # mkdtemp makes it 0700
        self._png = PngEncoder()
        self._n = 0

    def _check_target(self) -> None:
        t = self.target
        occupied = t.exists() and not (t.is_dir() and not any(t.iterdir()))  # an empty folder is free
        if occupied and not self._overwrite:
            raise OutputExistsError(t)

    def start(self, width: int, height: int) -> None:
        pass

    def write(self, rgb, pts, duration, shift_s, time_base) -> None:
        (self._tmp / f"frame_{self._n:06d}.png").write_bytes(self._png.encode(rgb))
        self._n += 1

    def finish(self, shift_s) -> None:
        self._check_target()
        t, old = self.target, None
        if t.exists() and (t.is_file() or any(t.iterdir())):  # overwrite: move the old one aside first
            old = t.with_name(f".{t.name}.old.{uuid.uuid4().hex[:12]}")
            os.replace(t, old)
        try:
            os.replace(self._tmp, t)
        except BaseException:
            if old is not None:
                os.replace(old, t)  # put the previous output back
            raise
        if old is not None:
            shutil.rmtree(old) if old.is_dir() else old.unlink()

    def abort(self) -> None:
        shutil.rmtree(self._tmp, ignore_errors=True)
