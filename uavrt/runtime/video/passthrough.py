"""Copy audio and subtitle streams from the input into the output, packet for packet.

No re-encoding: packets are demuxed from the source and muxed into the output with their
timestamps shifted by the same offset as the video (so sync is kept) and rescaled to the
output stream's time base. They are fed alongside the video as it is encoded, which keeps the
file interleaved and the muxer's queue short. A stream the output container cannot hold
(e.g. SubRip in MP4) is skipped with a warning; copying never fails the run.
"""

from __future__ import annotations

import io
import logging
from fractions import Fraction

import av

from ...errors import InputError

log = logging.getLogger(__name__)

COPIED_TYPES = ("audio", "subtitle")
_REGENERATED_TAGS = {"major_brand", "minor_version", "compatible_brands", "encoder"}


def _muxable(format_name: str, stream) -> str | None:
    """None when `format_name` can hold a copy of `stream`, else FFmpeg's reason.

    A dry run (add the stream, write a header into memory) catches both the codec/container
    table and header-time refusals, without touching the real output.
    """
    try:
        with av.open(io.BytesIO(), "w", format=format_name) as probe:
            probe.add_stream_from_template(stream)
            probe.start_encoding()
    except (av.FFmpegError, ValueError, NotImplementedError) as e:
        return str(e)
    return None


class StreamCopier:
    """trim=True keeps only the packets that start within the written video's time range (a
    segment of the input): packets before the first frame are dropped, and the writer stops
    copying at the last frame's end. The cut is at packet granularity (an AAC packet is 1024
    samples, 21 ms at 48 kHz); a subtitle cue that starts before the segment is not kept."""

    def __init__(self, source, output, trim: bool = False):
        self.source = str(source)
        self.trim = trim
        try:
            self._src = av.open(self.source)
        except (av.FFmpegError, ValueError, OSError) as e:
            raise InputError(f"copy_streams_from={self.source!r} cannot be read: {e}") from e
        self._out = output
        self._map = {}  # input stream index -> output stream
        self._warned: set[int] = set()
        self._pending = None  # the next packet, read ahead to know its time
        try:
            self._add_streams()
        except BaseException:
            self.close()
            raise

    def _add_streams(self) -> None:
        output = self._out
        self._copy_container_info()
        fmt = output.format.name.split(",")[0]
        for st in self._src.streams:
            if st.type not in COPIED_TYPES:
                if st.type != "video":
                    log.info("%s: stream #%d (%s) is not copied", self.source, st.index, st.type)
                continue
            name = st.codec_context.codec.canonical_name if st.codec_context else "?"
            reason = _muxable(fmt, st)
            if reason is not None and _muxable("matroska", st) is not None:  # fits nowhere: the track itself
                log.warning("%s: the input's %s stream #%d (%s) is damaged or incomplete and is not copied (%s)",
                            self.source, st.type, st.index, name, reason)
                continue
            if reason is not None:
                log.warning("%s: %s stream #%d (%s) cannot be stored in %s output; skipped (%s)",
                            self.source, st.type, st.index, name, fmt, reason)
                continue
            out = output.add_stream_from_template(st)
            for key in ("language", "title", "handler_name"):
                if key in st.metadata:
                    out.metadata[key] = st.metadata[key]
            out.disposition = st.disposition  # default/forced flags of subtitle tracks matter
            self._map[st.index] = out
        if self._map:
            streams = [self._src.streams[i] for i in self._map]
            for st in self._src.streams:
                if st.index not in self._map:
                    st.discard = av.stream.Discard.all  # the demuxer skips what we do not copy
            self._packets = self._src.demux(streams)
        else:
            self.close()

    def _copy_container_info(self) -> None:
        """Title, dates, chapters... like ffmpeg's default; the muxer writes its own brand tags."""
        for key, value in self._src.metadata.items():
            if key.lower() not in _REGENERATED_TAGS:
                self._out.metadata[key] = value
        try:
            chapters = self._src.chapters()
            if chapters:
                self._out.set_chapters(chapters)
        except (av.FFmpegError, ValueError, TypeError) as e:
            log.warning("%s: chapters not copied (%s)", self.source, e)

    @property
    def active(self) -> bool:
        return bool(self._map)

    def _next(self):
        for pkt in self._packets:
            if pkt.size == 0 or (pkt.dts is None and pkt.pts is None):
                continue  # demux() ends with empty flush packets
            return pkt
        return None

    def mux_until(self, t_s: Fraction | None, shift_s: Fraction, before: bool = False) -> None:
        """Mux copied packets whose (input) time is <= t_s (< t_s when `before`); all that remain
        when t_s is None. With trim, packets earlier than shift_s (the first frame) are dropped."""
        if not self._map:
            return
        while True:
            if self._pending is None:
                try:
                    self._pending = self._next()
                except av.FFmpegError as e:  # damaged tail in the source: keep what we have
                    log.warning("%s: reading streams to copy stopped: %s", self.source, e)
                    self._pending = None
                if self._pending is None:
                    self.close()
                    return
            pkt = self._pending
            ts = pkt.dts if pkt.dts is not None else pkt.pts
            t = ts * pkt.time_base
            if t_s is not None and (t > t_s or (before and t >= t_s)):
                return
            self._pending = None
            if self.trim and t < shift_s:
                continue  # before the segment
            self._mux(pkt, shift_s)

    def _mux(self, pkt, shift_s: Fraction) -> None:
        in_index = pkt.stream.index
        shift = round(shift_s / pkt.time_base)
        if pkt.pts is not None:
            pkt.pts -= shift
        if pkt.dts is not None:
            pkt.dts -= shift
        pkt.stream = self._map[in_index]  # PyAV rescales from pkt.time_base to the output's
        try:
            self._out.mux(pkt)
        except (av.FFmpegError, ValueError) as e:
            if in_index not in self._warned:
                self._warned.add(in_index)
                log.warning("%s: a packet of stream #%d could not be muxed and was dropped (%s); "
                            "further failures of this stream are dropped silently", self.source, in_index, e)

    def close(self) -> None:
        if self._src is not None:
            self._src.close()
            self._src = None
            self._map = {}
