"""The encoders the writer offers, their defaults and the validation of user choices."""

from __future__ import annotations

from dataclasses import dataclass, field

import av

from ...errors import ConfigError, check_range


@dataclass(frozen=True)
class EncoderSpec:
    name: str
    default_pix_fmt: str
    crf_range: tuple[int, int] | None  # None: the codec has no CRF rate control
    default_crf: int | None
    options: dict = field(default_factory=dict)  # FFmpeg codec options (strings)
    mp4_tag: str | None = None  # codec tag Apple players need in MP4/MOV


ENCODERS: dict[str, EncoderSpec] = {
    # Visually lossless default; `preset` may be overridden through options.
    "libx264": EncoderSpec("libx264", "yuv420p", (0, 51), 18, {"preset": "medium"}),
    # RGB H.264: lossless (qp 0) unless a crf is given.
    "libx264rgb": EncoderSpec("libx264rgb", "rgb24", (0, 51), None, {"preset": "medium", "qp": "0"}),
    "libx265": EncoderSpec("libx265", "yuv420p", (0, 51), 18,
                           {"preset": "medium", "x265-params": "log-level=error"}, mp4_tag="hvc1"),
    # Lossless; version 3 with per-slice CRCs so later corruption is detectable.
    "ffv1": EncoderSpec("ffv1", "bgr0", None, None, {"level": "3", "slicecrc": "1"}),
    # ProRes 422 HQ by default (profile 3); options={"profile": "4"} + yuv444p10le for 4444.
    "prores_ks": EncoderSpec("prores_ks", "yuv422p10le", None, None, {"profile": "3"}, mp4_tag="apch"),
}
FILE_CODECS = tuple(ENCODERS)
FOLDER_CODECS = ("png",)


@dataclass(frozen=True)
class EncoderChoice:
    spec: EncoderSpec
    pix_fmt: str
    options: dict  # final codec options, user's last


def resolve_encoder(codec: str, crf: int | None, pix_fmt: str | None, options: dict | None) -> EncoderChoice:
    """Validate codec/crf/pix_fmt/options and merge them over the codec's defaults."""
    if codec not in ENCODERS:
        raise ConfigError("codec", codec, "one of " + ", ".join(repr(c) for c in FILE_CODECS)
                          + " (or an output folder for PNG frames)")
    spec = ENCODERS[codec]
    try:
        av.Codec(codec, "w")
    except Exception as e:  # the FFmpeg build lacks it: say which build would have it
        raise ConfigError("codec", codec, "an encoder present in this FFmpeg build",
                          hint=f"PyAV/FFmpeg {av.__version__} cannot open it: {e}") from e
    opts = dict(spec.options)
    if crf is not None:
        if spec.crf_range is None:
            raise ConfigError("crf", crf, f"None for codec {codec!r} (it has no CRF rate control)")
        check_range("crf", crf, *spec.crf_range, integer=True)
        opts.pop("qp", None)
        opts["crf"] = str(crf)
    elif spec.default_crf is not None:
        opts["crf"] = str(spec.default_crf)
    fmt = pix_fmt or spec.default_pix_fmt
    allowed = [f.name for f in av.Codec(codec, "w").video_formats or ()]
    if allowed and fmt not in allowed:
        raise ConfigError("pix_fmt", fmt, f"one of the {codec} pixel formats: {', '.join(allowed)}")
    for k, v in (options or {}).items():
        if not isinstance(k, str):
            raise ConfigError("options", options, "a dict of FFmpeg option names to values")
        opts[k] = str(v)
    return EncoderChoice(spec, fmt, opts)


def check_frame_size(width: int, height: int, pix_fmt: str) -> None:
    """Chroma-subsampled formats need dimensions divisible by the subsampling factor."""
    comps = av.VideoFormat(pix_fmt, 64, 64).components  # 64x64 probe reveals the chroma factors
    chroma = [c for c in comps if c.is_chroma]
    if not chroma:
        return
    sub_w, sub_h = 64 // chroma[0].width, 64 // chroma[0].height
    if width % sub_w or height % sub_h:
        raise ConfigError("frame size", f"{width}x{height}",
                          f"a width divisible by {sub_w} and a height divisible by {sub_h} for "
                          f"pix_fmt {pix_fmt!r} (or a 4:4:4 / RGB pix_fmt such as 'yuv444p', 'bgr0')")
