"""Video I/O for the runtime (PyAV/FFmpeg): probe, stream frames in, encode frames out.

    info = probe("in.mp4")
    with open_frames("in.mp4") as reader, VideoWriter("out.mp4", fps=reader.info.fps,
            time_base=reader.info.time_base, copy_streams_from="in.mp4") as writer:
        for frame in reader:                      # frame.rgb: [H, W, 3] uint8, upright
            writer.write(upscale(frame.rgb), frame.pts)
"""

from .encoders import ENCODERS, EncoderSpec
from .info import Frame, VideoInfo
from .reader import FrameReader, open_frames
from .writer import VideoWriter, is_folder_target


def probe(path, allow_truncated: bool = False) -> VideoInfo:
    """Facts about a video file or image folder; decodes one frame, so damage shows here."""
    with FrameReader(path, allow_truncated) as reader:
        return reader.info


__all__ = ["ENCODERS", "EncoderSpec", "Frame", "FrameReader", "VideoInfo", "VideoWriter",
           "is_folder_target", "open_frames", "probe"]
