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

import io
import logging
import os
import re
import shutil
import tempfile
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from ...errors import ConfigError, InputError, OutputExistsError
from ...fsutil import atomic_path, make_temp
from .color import rgb24_to_frame, tag_encoder
from .encoders import FILE_CODECS, FOLDER_CODECS, check_frame_size, resolve_encoder
from .images import PngEncoder
from .passthrough import StreamCopier

log = logging.getLogger(__name__)

DEFAULT_CODEC = "libx264"
_MOV_FAMILY = ("mp4", "mov", "ipod", "3gp", "3g2", "psp", "ismv")
# Containers that store no presentation timestamps, only a frame rate: every frame is one tick
# of 1/fps and a frame's time is its position (dts). With B-frames the decode order differs from
# the display order, which such a container cannot say, so the encoder must emit none.
_TICK_FORMATS = ("avi",)


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
    return os.fspath(path).endswith(("/", os.sep)) or Path(path).is_dir()


_CONTAINERS = {".mp4": "mp4", ".mkv": "matroska", ".mov": "mov", ".avi": "avi"}


def _codecs_by_container() -> str:
    """'.mp4: libx264, ...; .mkv: ...' for the messages: which of our encoders goes where."""
    parts = []
    for ext, fmt in _CONTAINERS.items():
        try:
            with av.open(io.BytesIO(), "w", format=fmt) as c:
                held = c.supported_codecs
        except (av.FFmpegError, ValueError):
            continue
        ok = [c for c in FILE_CODECS if av.Codec(c, "w").canonical_name in held]
        parts.append(f"{ext}: {', '.join(ok)}")
    return "; ".join(parts)


def check_output(path, *, codec: str | None = DEFAULT_CODEC, crf: int | None = None, pix_fmt: str | None = None,
                 options: dict | None = None, overwrite: bool = False) -> None:
    """What VideoWriter(path, ...) would refuse, checked without creating anything: location,
    an existing target, the container named by the extension and whether it holds the codec."""
    from ...fsutil import check_output_location, check_writable
    folder = is_folder_target(path)
    check_output_location(path, "output", folder=folder)
    if folder:
        _check_folder_codec(path, codec, crf, pix_fmt, options)
        _PngFolderSink.check_target(Path(os.fspath(path).rstrip("/" + os.sep)), overwrite)
        return
    check_writable(path, overwrite)
    choice = resolve_encoder(codec or DEFAULT_CODEC, crf, pix_fmt, options)
    with tempfile.TemporaryDirectory(prefix="uavrt-check-") as d:  # a dry run of the container
        out = _open_output(Path(d) / ("probe" + Path(path).suffix), path)
        try:
            _add_video_stream(out, choice, Fraction(25), path)
        finally:
            out.close()


def _check_folder_codec(path, codec, crf, pix_fmt, options) -> None:
    if codec not in (None, DEFAULT_CODEC, *FOLDER_CODECS):
        raise ConfigError("codec", codec, "None or 'png' for an output folder "
                          f"(video files take {', '.join(FILE_CODECS)})")
    if crf is not None or pix_fmt not in (None, "rgb24") or options:
        raise ConfigError("crf/pix_fmt/options", (crf, pix_fmt, options),
                          "None for an output folder (PNG frames are lossless rgb24)")


def _open_output(tmp: Path, target):
    try:
        return av.open(str(tmp), "w")
    except (av.FFmpegError, ValueError) as e:
        raise ConfigError("output", str(target), "a file name whose extension names a container FFmpeg "
                          f"writes ({_codecs_by_container()}), or a folder ('out/') for PNG frames") from e


def _add_video_stream(out, choice, fps, target):
    codec = choice.spec.name
    try:
        return out.add_stream(codec, rate=fps, options=choice.options)
    except ValueError as e:
        fmt = out.format.name
        held = out.supported_codecs
        ok = [c for c in FILE_CODECS if av.Codec(c, "w").canonical_name in held]
        if not ok:
            raise ConfigError("output", str(target), f"a container that holds one of uavrt's encoders "
                              f"({_codecs_by_container()}); {fmt} holds none of them") from e
        raise ConfigError("codec", codec, f"a codec the {fmt} container holds: {', '.join(ok)}") from e


class VideoWriter:
    def __init__(self, path, *, fps, time_base=None, codec: str | None = DEFAULT_CODEC, crf: int | None = None,
                 pix_fmt: str | None = None, overwrite: bool = False, copy_streams_from: str | None = None,
                 options: dict | None = None, sample_aspect_ratio=None, trim_copied_streams: bool = False):
        """codec: one of encoders.ENCODERS for files. A folder target always gets PNG frames; it
        accepts codec 'png', None or the default 'libx264' (so one CLI default serves both).
        trim_copied_streams: copy only the audio/subtitle packets within the written frames' time
        range (the output is a segment of the input)."""
        self.fps = _fraction("fps", fps)
        self.time_base = _fraction("time_base", time_base) if time_base is not None else 1 / self.fps
        self._default_duration = max(1, round(1 / (self.fps * self.time_base)))
        self._count = 0
        self._size = None
        self._pts0 = None
        self._last_pts = None
        self._done = False
        if is_folder_target(path):
            _check_folder_codec(path, codec, crf, pix_fmt, options)
            if copy_streams_from:
                log.warning("output %s is a folder of PNG frames: audio/subtitles of %s are not kept",
                            path, copy_streams_from)
            self._sink = _PngFolderSink(path, overwrite)
        else:
            choice = resolve_encoder(codec or DEFAULT_CODEC, crf, pix_fmt, options)
            self._sink = _ContainerSink(path, choice, self.fps, self.time_base, overwrite,
                                        copy_streams_from, sample_aspect_ratio, trim_copied_streams)
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
                 copy_from, sar, trim: bool = False):
        self.target = Path(path)
        self._trim = trim
        self._end_s = None  # input time of the end of the last frame written
        self._choice = choice
        self._atomic = atomic_path(self.target, overwrite)
        tmp = self._atomic.__enter__()  # OutputExistsError here, before any work
        self._out = None
        self._copier = None
        try:
            self._open(tmp, fps, time_base, copy_from, sar)
        except BaseException as e:
            self.abort(e)
            raise

    def _open(self, tmp: Path, fps, time_base, copy_from, sar):
        self._out = _open_output(tmp, self.target)
        fmt_name = self._out.format.name
        self._stream = _add_video_stream(self._out, self._choice, fps, self.target)
        s = self._stream
        s.pix_fmt = self._choice.pix_fmt
        self._tick = None
        if fmt_name in _TICK_FORMATS:
            # AVI: time base 1/fps and no B-frames, else the muxer picks its own base (frames land
            # at the wrong times) and reordered frames start the video late against its audio.
            self._tick, time_base = time_base, 1 / fps
            s.codec_context.max_b_frames = 0
            if self._choice.spec.name == "libx265":
                s.codec_context.options = {**s.codec_context.options, "x265-params":
                                           self._choice.options.get("x265-params", "") + ":bframes=0"}
        s.codec_context.time_base = time_base
        s.time_base = time_base
        self._last_tick = None
        s.thread_type = "AUTO"
        if self._choice.spec.mp4_tag and fmt_name in _MOV_FAMILY:
            s.codec_tag = self._choice.spec.mp4_tag
        if fmt_name in _MOV_FAMILY:
            self._out.options["movflags"] = "+faststart"  # moov first: plays while downloading
        self._sar = _fraction("sample_aspect_ratio", sar) if sar is not None else None
        if copy_from is not None:
            self._copier = StreamCopier(copy_from, self._out, trim=self._trim)

    def start(self, width: int, height: int) -> None:
        check_frame_size(width, height, self._choice.pix_fmt)
        s = self._stream
        s.width, s.height = width, height
        if self._sar is not None:
            s.codec_context.sample_aspect_ratio = self._sar
        tag_encoder(s.codec_context, self._choice.pix_fmt)

    def write(self, rgb, pts: int, duration: int, shift_s: Fraction, time_base: Fraction) -> None:
        frame = rgb24_to_frame(rgb, self._choice.pix_fmt)
        if self._tick is not None:  # input time -> the nearest free frame slot of 1/fps
            slot = round(pts * time_base / self._stream.time_base)
            if self._last_tick is not None and slot <= self._last_tick:
                slot = self._last_tick + 1  # two input frames closer than 1/fps: next slot
            self._last_tick = slot
            pts, time_base, duration = slot, self._stream.time_base, 1
        frame.pts, frame.time_base, frame.duration = pts, time_base, duration
        for packet in self._stream.encode(frame):
            self._out.mux(packet)
        self._end_s = (pts + duration) * time_base + shift_s
        if self._copier is not None:  # interleave: copied packets up to this frame's input time
            self._copier.mux_until(pts * time_base + shift_s, shift_s)

    def finish(self, shift_s: Fraction) -> None:
        for packet in self._stream.encode(None):
            self._out.mux(packet)
        if self._copier is not None:
            if self._trim:
                self._copier.mux_until(self._end_s, shift_s, before=True)
            else:
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
    """frame_000000.png ... written to a temp folder beside the target, then moved into place.

    A new target folder: the temp folder is renamed onto it (atomic). An existing folder is
    never removed or emptied: an empty one is filled; one that holds anything is refused unless
    overwrite=True, and then only this run's own frame names in it are replaced, one file at a
    time; every other file and folder in it stays as it was.
    """

    NAME = "frame_{:06d}.png"

    def __init__(self, path, overwrite: bool):
        self.target = Path(str(path).rstrip("/" + os.sep) or str(path))
        self._overwrite = overwrite
        self._n = 0
        self._check_target()  # before any work
        self.target.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = make_temp(self.target, folder=True)
        self._png = PngEncoder()

    def _check_target(self) -> None:
        self.check_target(self.target, self._overwrite, self._n)

    @classmethod
    def check_target(cls, t: Path, overwrite: bool, frames: int = 0) -> None:
        if t.exists() or t.is_symlink():
            if not t.is_dir():
                raise ConfigError("output", str(t), "a folder for PNG frames (this path is an existing file; "
                                  "it is never replaced by a folder)")
            held = next(t.iterdir(), None)
            if held is not None and not overwrite:
                raise OutputExistsError(t, "is a folder that already holds files; pass --overwrite "
                                        "(overwrite=True) to write frame_NNNNNN.png into it: only those names "
                                        "are replaced, other files are left alone")
            for i in range(frames):  # a folder in the way of one of our names: say so before moving
                if (t / cls.NAME.format(i)).is_dir():
                    raise ConfigError("output", str(t / cls.NAME.format(i)), "a frame file name that is free "
                                      "or a file (it is a folder)")

    def start(self, width: int, height: int) -> None:
        pass

    def write(self, rgb, pts, duration, shift_s, time_base) -> None:
        (self._tmp / self.NAME.format(self._n)).write_bytes(self._png.encode(rgb))
        self._n += 1

    def finish(self, shift_s) -> None:
        self._check_target()
        t = self.target
        if not t.exists():
            try:
                os.rename(self._tmp, t)  # atomic; fails if the folder appeared meanwhile
                return
            except OSError:
                self._check_target()
        for i in range(self._n):  # into an existing folder: our names only, each atomically
            name = self.NAME.format(i)
            os.replace(self._tmp / name, t / name)
        os.rmdir(self._tmp)
        extra = sorted(p.name for p in t.glob("frame_*.png") if re.fullmatch(r"frame_(\d{6})\.png", p.name)
                       and int(p.name[6:12]) >= self._n)
        if extra:
            log.warning("%s also holds %d frame file(s) this run did not write (from %s on); they were left alone",
                        t, len(extra), extra[0])

    def abort(self) -> None:
        shutil.rmtree(self._tmp, ignore_errors=True)  # only our own temp folder, never the target
