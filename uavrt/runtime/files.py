"""File-to-file upscaling: decode -> Upscaler.stream -> encode, atomically, with audio copied."""

from __future__ import annotations

import collections
import contextlib
import itertools
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Callable

from ..errors import ConfigError, InputError
from ..fsutil import check_writable

VIDEO_SUFFIXES = (".mp4", ".mkv", ".mov", ".avi", ".webm", ".m4v", ".mpg", ".mpeg", ".ts", ".flv", ".wmv")


DEFAULT_IMAGE_FPS = Fraction(30)  # the release writes image-folder inputs at 30 fps


@dataclass(frozen=True)
class OutputConfig:
    codec: str = "libx264"
    crf: int | None = None
    overwrite: bool = False
    fps: Fraction | None = None  # only for inputs without a rate (image folders)
    allow_truncated: bool = False  # a truncated input: upscale its readable frames (warned) instead of refusing

    def __post_init__(self):
        from ..errors import check_type
        from ..preflight import check_fps
        check_type("codec", self.codec, str, "an encoder name, e.g. 'libx264'")
        check_type("overwrite", self.overwrite, bool, "True or False")
        check_type("allow_truncated", self.allow_truncated, bool, "True or False")
        object.__setattr__(self, "fps", check_fps(self.fps, "fps"))


@dataclass(frozen=True)
class Segment:
    """A part of the input: from `start_frame` (0-based) or `start_s` (seconds from the first
    frame), for `frames` frames or `duration_s` seconds (default: to the end). Frames keep their
    absolute index, so their noise is the full run's; windows are laid out from the segment's
    first frame (README, "Preview a segment", says when frames equal the full run's)."""

    start_frame: int | None = None
    start_s: Fraction | None = None
    frames: int | None = None
    duration_s: Fraction | None = None

    def __post_init__(self):
        if self.start_frame is not None and self.start_s is not None:
            raise ConfigError("start", (self.start_frame, self.start_s), "a frame index or a time, not both")
        if self.frames is not None and self.duration_s is not None:
            raise ConfigError("frames/duration", (self.frames, self.duration_s), "one of them, not both")
        if self.start_frame is not None and (isinstance(self.start_frame, bool) or not isinstance(self.start_frame, int)
                                             or self.start_frame < 0):
            raise ConfigError("start", self.start_frame, "a frame index >= 0")
        if self.start_s is not None and not Fraction(self.start_s) >= 0:
            raise ConfigError("start", self.start_s, "a time >= 0 seconds")
        if self.frames is not None and (isinstance(self.frames, bool) or not isinstance(self.frames, int)
                                        or self.frames < 1):
            raise ConfigError("frames", self.frames, "an integer >= 1")
        if self.duration_s is not None and not Fraction(self.duration_s) > 0:
            raise ConfigError("duration", self.duration_s, "a time > 0 seconds")

    def select(self, frames, fps, time_base):
        """The Frames of the segment, from an iterator of reader Frames (stops reading at its end)."""
        t0 = first_t = None
        n = 0
        for fr in frames:
            t = (Fraction(fr.pts) * time_base) if (fr.pts is not None and time_base) else Fraction(fr.index) / fps
            if t0 is None:
                t0 = t  # times count from the first frame, as the output's timeline does
            t -= t0
            if self.start_frame is not None and fr.index < self.start_frame:
                continue
            if self.start_s is not None and t < Fraction(self.start_s):
                continue
            if first_t is None:
                first_t = t
            if self.frames is not None and n >= self.frames:
                return
            if self.duration_s is not None and t >= first_t + Fraction(self.duration_s):
                return
            n += 1
            yield fr


def upscale_file(upscaler, src, dst, out: OutputConfig = OutputConfig(), progress: Callable | None = None,
                 submit: Callable | None = None, in_flight: int = 1, overlap: bool = False,
                 segment: Segment | None = None, resume: str | None = None, job_dir=None) -> Path:
    """Decode `src`, upscale (windows run where `submit` sends them; see runtime/stream.py),
    encode to `dst` atomically with audio/subtitles copied.

    segment: only that part of the input (audio/subtitles cut to match).
    resume: None (no job state) or a JobState.open mode ("auto", "resume", "restart"): finished
    windows are kept in `job_dir` (default `<dst>.uavrt-job/`) so a killed run continues where
    it stopped; the folder is removed once the output is complete (runtime/jobstate.py).
    """
    from .video import VideoWriter, is_folder_target, open_frames
    if not is_folder_target(dst):  # refuse before any work (a folder target: the writer decides)
        check_writable(dst, out.overwrite)
    job = None
    if resume is not None:
        if not Path(src).exists():
            raise InputError(f"input {str(src)!r} does not exist")
        from .jobstate import JobState, default_job_dir, job_key
        key = job_key(src, upscaler.cfg, upscaler.info, segment)
        job = JobState.open(job_dir or default_job_dir(dst), key, mode=resume)
    try:
        with contextlib.ExitStack() as stack:
            if job is not None:
                inner = submit
                if inner is None and overlap:  # keep the I/O overlap: windows on a worker thread
                    from concurrent.futures import ThreadPoolExecutor
                    pool = stack.enter_context(ThreadPoolExecutor(1, thread_name_prefix="uavrt-window"))
                    inner, in_flight = upscaler.threaded_submit(pool, progress), max(in_flight, 2)
                submit = job.submit(inner or upscaler.local_submit(progress), progress)
            _encode(upscaler, src, dst, out, progress, submit, in_flight, segment, overlap, VideoWriter,
                    open_frames)
    except BaseException:
        if job is not None:
            if job.resumed == job.computed == 0:
                job.remove()  # nothing to continue from: leave nothing behind
            else:
                job.close()  # kept: the next run continues from it
        raise
    if job is not None:
        job.remove()
    return Path(dst)


def _encode(upscaler, src, dst, out, progress, submit, in_flight, segment, overlap, VideoWriter, open_frames):
    with open_frames(src, allow_truncated=out.allow_truncated) as reader:
        info = reader.info
        fps = info.fps or out.fps or DEFAULT_IMAGE_FPS
        total = info.num_frames
        if segment is not None and total is not None:
            total = max(0, total - (segment.start_frame or 0))
            total = min(total, segment.frames) if segment.frames is not None else total
        elif segment is not None and segment.frames is not None:
            total = segment.frames  # at most
        if progress:
            progress("video", 0, total)
        pts = collections.deque()
        selected = iter(reader) if segment is None else segment.select(iter(reader), fps, info.time_base)
        first = next(selected, None)
        if first is None:
            if segment is not None:
                raise ConfigError("start", segment.start_frame if segment.start_frame is not None else
                                  float(segment.start_s), f"a point inside {str(src)!r} (it ends before)")
            raise InputError(f"{str(src)!r} has no frames")

        def frames():
            for fr in itertools.chain([first], selected):
                pts.append(fr.pts)
                yield fr.rgb

        with VideoWriter(dst, fps=fps, time_base=info.time_base, codec=out.codec, crf=out.crf,
                         overwrite=out.overwrite, copy_streams_from=None if info.is_image_sequence else str(src),
                         trim_copied_streams=segment is not None) as writer:
            n = 0
            # absolute frame indices: a segment's frames get the full run's noise; eager=False: a file
            # gains nothing from early frames, so read ahead and keep only cross-fade frames float
            for frame in upscaler.stream(frames(), progress, submit=submit, in_flight=in_flight, overlap=overlap,
                                         first_index=first.index, eager=False):
                writer.write(frame, pts.popleft())
                n += 1
                if progress:
                    progress("written", n, total)


def list_inputs(src) -> list:
    """A video file, an image folder, or a folder of videos (each upscaled on its own)."""
    src = Path(src)
    if src.is_dir():
        videos = sorted(p for p in src.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)
        if videos:
            return videos
    return [src]
