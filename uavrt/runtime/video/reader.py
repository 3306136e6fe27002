"""Streaming frame readers: a video file (any FFmpeg-readable input) or a folder of images.

Frames are decoded one at a time and come out upright, as RGB24, with their presentation
timestamps; nothing holds the whole video. Damage is reported as InputError naming the path
and the frame index reached; whatever can be checked when opening is checked then, before any
expensive work starts (unreadable file, no video stream, no decodable frame, an index that
points past the end of a truncated file, images of different sizes).
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av

from ...errors import InputError, TruncatedInputError
from .color import describe, frame_to_rgb24
from .images import decode_image, image_size, list_images, read_image
from .info import Frame, VideoInfo
from .orientation import Orientation, frame_orientation

log = logging.getLogger(__name__)

_MOV = "mov,mp4,m4a,3gp,3g2,mj2"
_INDEXED_FORMATS = (_MOV, "avi")  # index lists every frame: exact counts, truncation visible
_EXACT_DURATION_FORMATS = (_MOV, "matroska,webm")  # durations from headers, not estimates


def open_frames(path, allow_truncated: bool = False) -> FrameReader:
    return FrameReader(path, allow_truncated)


class FrameReader:
    """`with open_frames(path) as r: for frame in r: ...` — single pass, context manager.

    A truncated input (it ends before what its container announces) raises TruncatedInputError:
    at open when the index shows it, else when the frames run out. With allow_truncated=True the
    readable frames are yielded instead and a warning says how many of how many were read;
    `truncated` and `frames_read` tell the caller afterwards.
    """

    def __init__(self, path, allow_truncated: bool = False):
        p = Path(path)
        if not p.exists():
            raise InputError(f"input {str(p)!r} does not exist")
        if p.is_file() and p.stat().st_size == 0:
            raise InputError(f"input {str(p)!r} is an empty file (0 bytes)")
        self._source = _FolderSource(p) if p.is_dir() else _ContainerSource(p, allow_truncated)
        self.info: VideoInfo = self._source.info
        self._used = False

    def __iter__(self) -> Iterator[Frame]:
        if self._used:
            raise RuntimeError("a FrameReader can be iterated once; open the input again")
        self._used = True
        return self._source.frames()

    @property
    def truncated(self) -> bool:
        return getattr(self._source, "truncated", False)

    @property
    def frames_read(self) -> int:
        return getattr(self._source, "frames_read", 0)

    def close(self) -> None:
        self._source.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


# ----------------------------------------------------------------------------- video files

def _open_container(path: Path):
    try:
        return av.open(str(path))
    except PermissionError as e:
        raise InputError(f"input {str(path)!r} cannot be read: permission denied") from e
    except av.EOFError as e:
        raise InputError(f"input {str(path)!r} is empty or ends before any media data: {e}") from e
    except (av.FFmpegError, ValueError, UnicodeDecodeError) as e:
        raise InputError(f"input {str(path)!r} is not a video FFmpeg can read (not a media file, or "
                         f"truncated/corrupt): {e}") from e


def _pick_video_stream(container, path: Path):
    # Cover art (MP3/MP4/MKV "attached pictures") is a video stream with one frame: skip it.
    streams = [s for s in container.streams.video if not (s.disposition & s.disposition.attached_pic)]
    if not streams:
        kinds = sorted({s.type for s in container.streams}) or ["none"]
        raise InputError(f"input {str(path)!r} has no video stream (streams: {', '.join(kinds)})")
    if len(streams) > 1:
        log.warning("%s has %d video streams: only stream #%d is upscaled; the others (#%s) are not in the output",
                    path, len(streams), streams[0].index, ", #".join(str(s.index) for s in streams[1:]))
    return streams[0]


def _expected_frame_count(container, stream) -> int | None:
    """Frames the container says will be shown, or None when it does not know."""
    if stream.frames <= 0:
        return None
    if container.format.name in _INDEXED_FORMATS:
        entries = stream.index_entries
        if len(entries) == stream.frames:  # complete index: drop edit-list-discarded samples
            return sum(1 for e in entries if not e.is_discard)
        if container.format.name == "avi":  # index lost (e.g. cut off): the header still counts
            return stream.frames
    return None  # other containers' counts can be estimates: never fail a run on them


def _index_truncation(container, stream, path: Path) -> str | None:
    """A truncated MP4/AVI whose index survived refers to bytes past the end: say so at open."""
    if container.format.name not in _INDEXED_FORMATS:
        return None
    entries = stream.index_entries
    if not entries:
        return None
    end = max(e.pos + e.size for e in entries)
    size = path.stat().st_size
    if end <= size:
        return None
    whole = sum(1 for e in entries if e.pos + e.size <= size)
    return (f"input {str(path)!r} is truncated: the container lists {len(entries)} video frames but only "
            f"{whole} are in the file (its index needs {end} bytes, the file has {size})")


def _parse_hms(text: str) -> float | None:
    try:
        h, m, s = text.split(":")
        return int(h) * 3600 + int(m) * 60 + float(s)
    except (ValueError, AttributeError):
        return None


def _expected_end_s(container, stream) -> float | None:
    """End time of the video stream when the container states it exactly, else None."""
    tb = stream.time_base
    if container.format.name in _EXACT_DURATION_FORMATS:
        if stream.duration is not None and tb is not None:
            return float((stream.duration + (stream.start_time or 0)) * tb)
        if "DURATION" in stream.metadata:  # Matroska writers store the per-track duration as a tag
            return _parse_hms(stream.metadata["DURATION"])
    if container.format.name in _INDEXED_FORMATS and tb is not None and stream.frames > 0:
        entries = stream.index_entries
        if len(entries) == stream.frames:  # complete index: its last timestamp is the last frame
            kept = [e.timestamp for e in entries if not e.is_discard]
            if kept:
                return float((max(kept) + 1) * tb)
    return None


def _rate(value) -> Fraction | None:
    return Fraction(value) if value else None


class _ContainerSource:
    def __init__(self, path: Path, allow_truncated: bool = False):
        self.path = path
        self.allow_truncated = allow_truncated
        self.truncated = False
        self.frames_read = 0
        self._container = _open_container(path)
        try:
            self._setup()
        except BaseException:
            self._container.close()
            raise

    def _setup(self):
        path, c = self.path, self._container
        self._stream = stream = _pick_video_stream(c, path)
        stream.thread_type = "AUTO"  # frame + slice threads; decoding is never the bottleneck then
        cut = _index_truncation(c, stream, path)
        self._size_limit = None
        if cut is not None:
            if not self.allow_truncated:
                raise TruncatedInputError(cut, None, stream.frames)
            self._size_limit = path.stat().st_size  # demux only packets that are whole in the file
            self._truncation(cut)
        self._expected_frames = _expected_frame_count(c, stream)
        self._expected_end_s = _expected_end_s(c, stream)
        self._n = 0  # frames decoded so far
        self._decoded = self._decode()
        first = next(self._decoded, None)  # decode one frame now: unreadable input fails at open
        if first is None:
            raise InputError(f"input {str(path)!r} has a video stream but no decodable frame (zero frames)")
        self._first = first
        self._orientation = frame_orientation(first, stream.metadata)
        self.info = self._build_info(first)

    def _build_info(self, first) -> VideoInfo:
        c, s, o = self._container, self._stream, self._orientation
        w, h = (first.height, first.width) if o.swaps_axes else (first.width, first.height)
        sar = _rate(s.sample_aspect_ratio)
        if sar == 1:
            sar = None
        elif sar is not None and o.swaps_axes:
            sar = 1 / sar
        color_range, color_space = describe(first)
        if s.duration is not None and s.time_base is not None:
            duration = float(s.duration * s.time_base)
        else:
            duration = c.duration / av.time_base if c.duration else None
        return VideoInfo(
            path=str(self.path), width=w, height=h, num_frames=self._expected_frames,
            fps=_rate(s.guessed_rate) or _rate(s.average_rate), time_base=_rate(s.time_base),
            rotation=o.rotation_cw, codec=s.codec_context.codec.canonical_name,
            pix_fmt=first.format.name, color_range=color_range,
            has_audio=bool(c.streams.audio), has_subtitles=bool(c.streams.subtitles),
            duration_s=duration, is_image_sequence=False, avg_fps=_rate(s.average_rate),
            color_space=color_space, container=c.format.name, sample_aspect_ratio=sar)

    def _decode(self):
        """Yields av.VideoFrames; every FFmpeg failure becomes an InputError naming the frame.

        AVI stores no presentation times, only each frame's slot (its dts, in 1/fps): FFmpeg's
        demuxer guesses pts from it (one frame late for H.264). Frames leave the decoder in
        display order, so the k-th frame shown takes the k-th smallest slot.
        """
        slots = [] if self._container.format.name == "avi" else None
        try:
            for packet in self._container.demux(self._stream):
                if self._size_limit is not None and packet.size and packet.pos is not None \
                        and packet.pos + packet.size > self._size_limit:
                    continue  # cut off: decoding a partial sample gives a damaged picture
                if slots is not None and packet.size and packet.dts is not None:
                    heapq.heappush(slots, packet.dts)
                for frame in packet.decode():  # the final empty packet flushes the decoder
                    self._n += 1
                    if slots:
                        frame.pts = heapq.heappop(slots)
                    yield frame
        except av.FFmpegError as e:
            msg = (f"input {str(self.path)!r} is truncated or corrupt: decoding failed at frame {self._n} "
                   f"({self._n} frames decoded): {e}")
            if not (self.allow_truncated and self._n):
                raise (TruncatedInputError(msg, self._n, self._expected_frames) if self._n
                       else InputError(msg)) from e
            self._truncation(msg)

    def _truncation(self, msg: str) -> None:
        """allow_truncated: note it and go on with what is readable (warned again at the end)."""
        if not self.truncated:
            log.warning("%s; going on with the readable frames (allow_truncated)", msg)
        self.truncated = True

    def frames(self) -> Iterator[Frame]:
        stream, orient = self._stream, self._orientation
        index, last_pts, last_end, bad_pts = 0, None, None, 0
        pending = [self._first]
        self._first = None
        while True:
            frame = pending.pop() if pending else next(self._decoded, None)
            if frame is None:
                break
            pts = frame.pts
            if pts is not None and last_pts is not None and pts <= last_pts:
                # Broken muxing: hand out None so the writer places the frame by index / fps.
                bad_pts += 1
                (log.warning if bad_pts == 1 else log.debug)(
                    "%s: frame %d has pts %d after %d; its time will be derived from the rate",
                    self.path, index, pts, last_pts)
                pts = None
            if pts is not None:
                last_pts = pts
                last_end = pts + (frame.duration or 0)
            yield Frame(orient.apply(frame_to_rgb24(frame)), pts, index)
            index += 1
            self.frames_read = index
        if not self.truncated:  # else already known and warned about
            self._check_complete(index, last_end, stream)
        if self.truncated:
            total = self._expected_frames or self._stream.frames or None
            log.warning("%s: read %d of the %s frames the container announces (the input is truncated)",
                        self.path, index, total if total else "(unknown number of)")

    def _check_complete(self, n: int, last_end, stream) -> None:
        """The demuxer may just stop at a cut: compare with what the container promised.

        Stopping short of the stated end is truncation (error). Reaching the end with fewer
        frames than listed means the decoder dropped undecodable frames on the way: the output
        is still whole, so that is only a warning.
        """
        where = f"input {str(self.path)!r} is truncated or corrupt: decoding stopped at frame {n}"
        reached_end = None  # unknown
        if self._expected_end_s is not None and last_end is not None and stream.time_base is not None:
            fps = self.info.fps or Fraction(25)
            got = float(last_end * stream.time_base)
            reached_end = got >= self._expected_end_s - max(2 / float(fps), 0.2)
            if not reached_end:
                msg = (f"{where} (t={got:.3f}s) but the container says the video lasts "
                       f"{self._expected_end_s:.3f}s")
                if not self.allow_truncated:
                    raise TruncatedInputError(msg, n, self._expected_frames)
                self._truncation(msg)
                return
        if self._expected_frames is not None and n < self._expected_frames:
            if reached_end is None:
                msg = f"{where} but the container lists {self._expected_frames} frames"
                if not self.allow_truncated:
                    raise TruncatedInputError(msg, n, self._expected_frames)
                self._truncation(msg)
                return
            log.warning("%s: %d of the %d frames listed were decodable; the others were dropped by the "
                        "decoder", self.path, n, self._expected_frames)

    def close(self) -> None:
        self._decoded.close()
        self._container.close()


# ----------------------------------------------------------------------------- image folders

class _FolderSource:
    def __init__(self, folder: Path):
        self.path = folder
        self._files = list_images(folder)
        self._check_sizes()
        first, meta, codec = decode_image(self._files[0])
        o: Orientation = frame_orientation(first, meta)
        w, h = (first.height, first.width) if o.swaps_axes else (first.width, first.height)
        color_range, color_space = describe(first)
        self.info = VideoInfo(
            path=str(folder), width=w, height=h, num_frames=len(self._files), fps=None,
            time_base=None, rotation=o.rotation_cw, codec=codec,
            pix_fmt=first.format.name, color_range=color_range, has_audio=False,
            has_subtitles=False, duration_s=None, is_image_sequence=True, color_space=color_space,
            container="image folder")

    def _check_sizes(self) -> None:
        """All frames must share one size; checked from headers so it fails before any work."""
        first = image_size(self._files[0])
        for f in self._files[1:]:
            size = image_size(f)
            if size != first:
                raise InputError(f"input folder {str(self.path)!r} mixes image sizes: "
                                 f"{self._files[0].name} is {first[0]}x{first[1]} but {f.name} is "
                                 f"{size[0]}x{size[1]}")

    def frames(self) -> Iterator[Frame]:
        for i, f in enumerate(self._files):
            rgb = read_image(f)
            if rgb.shape[:2] != (self.info.height, self.info.width):  # e.g. per-file EXIF rotation
                raise InputError(f"input folder {str(self.path)!r}: {f.name} is {rgb.shape[1]}x{rgb.shape[0]}"
                                 f" upright, frame 0 is {self.info.width}x{self.info.height}")
            yield Frame(rgb, None, i)

    def close(self) -> None:
        pass

