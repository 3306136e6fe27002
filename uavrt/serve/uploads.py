"""Receiving a job: the multipart body streamed to disk under limits, then the input probed.

The body is parsed as it arrives (python-multipart's streaming parser): the file part goes
straight to a file in the uploads folder, chunk by chunk, so an upload never sits in memory;
the other fields are small and capped. A declared Content-Length beyond the limit is refused
before a byte of the body is read; an undeclared (chunked) body is counted as it comes.
The client's file name is kept only as a sanitised display name: paths are chosen here.
"""

from __future__ import annotations

import os
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from python_multipart.multipart import MultipartParser, parse_options_header

from ..errors import InputError
from ..runtime.files import VIDEO_SUFFIXES

FIELD_LIMIT = 64 * 1024  # bytes of a non-file field (the settings JSON)
FORM_OVERHEAD = 64 * 1024  # headers and fields on top of the file in a multipart body
FILE_FIELD = "video"
TEXT_FIELDS = ("settings", "path")
INPUT_SUFFIXES = VIDEO_SUFFIXES + (".y4m", ".gif", ".png", ".jpg", ".jpeg", ".webp")


class UploadRefused(Exception):
    """An HTTP error to send for an upload: status code, message and the offending parameter."""

    def __init__(self, status: int, message: str, param: str | None = None, **extra):
        self.status, self.message, self.param, self.extra = status, message, param, extra
        super().__init__(message)


@dataclass
class Form:
    file: Path | None = None  # the received upload (in the uploads folder), None when no file part
    file_bytes: int = 0
    filename: str = ""
    fields: dict = field(default_factory=dict)

    def discard(self) -> None:
        if self.file is not None:
            self.file.unlink(missing_ok=True)
            self.file = None


def display_name(client_name: str) -> str:
    """A harmless label from the client's file name: last component, safe characters only."""
    base = re.split(r"[\\/]", client_name or "")[-1]
    safe = re.sub(r"[^A-Za-z0-9._ -]", "_", base).strip(" .")
    return safe[:100] or "upload"


def input_suffix(name: str) -> str:
    """The stored input's suffix: the display name's when it is a known media suffix, else none
    (FFmpeg finds the format from the content; the suffix only helps the odd demuxer)."""
    suffix = Path(name).suffix.lower()
    return suffix if suffix in INPUT_SUFFIXES else ""


async def receive_form(request, upload_dir: Path, max_file_bytes: int, disk_free) -> Form:
    """Parse a multipart/form-data request; the file part is written under `upload_dir`.

    disk_free: bytes the jobs folder may still grow by (the quota), checked as bytes arrive.
    Raises UploadRefused; on any failure nothing is left in `upload_dir`.
    """
    ctype, params = parse_options_header(request.headers.get("content-type", ""))
    if ctype != b"multipart/form-data" or not params.get(b"boundary"):
        raise UploadRefused(415, "the body must be multipart/form-data with a file field 'video' (or a field "
                                 "'path') and an optional field 'settings'", "content-type")
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            declared_n = int(declared)
        except ValueError:
            raise UploadRefused(400, f"Content-Length {declared!r} is not a number", "content-length")
        if declared_n > max_file_bytes + FORM_OVERHEAD:
            raise UploadRefused(413, f"the request declares {declared_n} bytes; uploads are limited to "
                                     f"{max_file_bytes} bytes (server option --max-upload-mb)", "video",
                                limit_bytes=max_file_bytes)
        if declared_n > disk_free:
            raise UploadRefused(507, f"the request declares {declared_n} bytes but the jobs folder has only "
                                     f"{max(0, disk_free)} bytes left of its quota (server option --disk-quota-gb)",
                                "video")
    form = Form()
    state = {"name": None, "filename": None, "headers": {}, "hfield": b"", "hvalue": b"", "buf": None, "fh": None,
             "error": None}

    def on_header_field(data, start, end):
        state["hfield"] += data[start:end]

    def on_header_value(data, start, end):
        state["hvalue"] += data[start:end]

    def on_header_end():
        state["headers"][state["hfield"].lower()] = state["hvalue"]
        state["hfield"], state["hvalue"] = b"", b""

    def on_headers_finished():
        _, disp = parse_options_header(state["headers"].get(b"content-disposition", b""))
        name = disp.get(b"name", b"").decode("utf-8", "replace")
        filename = disp.get(b"filename")
        state["name"] = name
        if name == FILE_FIELD:
            if form.file is not None:
                raise UploadRefused(400, "the form has more than one 'video' field", "video")
            form.filename = filename.decode("utf-8", "replace") if filename is not None else ""
            form.file = upload_dir / f"{secrets.token_hex(16)}.upload"
            state["fh"] = open(form.file, "xb")
        elif name in TEXT_FIELDS:
            state["buf"] = bytearray()
        else:
            raise UploadRefused(400, f"unknown form field {name!r}: the fields are 'video' (a file), 'path' and "
                                     f"'settings'", name)

    def on_part_data(data, start, end):
        n = end - start
        if state["fh"] is not None:
            form.file_bytes += n
            if form.file_bytes > max_file_bytes:
                raise UploadRefused(413, f"the uploaded video exceeds the limit of {max_file_bytes} bytes (server "
                                         f"option --max-upload-mb)", "video", limit_bytes=max_file_bytes)
            if form.file_bytes > disk_free:
                raise UploadRefused(507, "the upload would exceed the jobs folder's disk quota (server option "
                                         "--disk-quota-gb)", "video")
            state["fh"].write(data[start:end])
        elif state["buf"] is not None:
            if len(state["buf"]) + n > FIELD_LIMIT:
                raise UploadRefused(413, f"form field {state['name']!r} exceeds {FIELD_LIMIT} bytes", state["name"])
            state["buf"] += data[start:end]

    def on_part_end():
        if state["fh"] is not None:
            state["fh"].close()
            state["fh"] = None
        elif state["buf"] is not None:
            if state["name"] in form.fields:
                raise UploadRefused(400, f"the form has more than one {state['name']!r} field", state["name"])
            form.fields[state["name"]] = bytes(state["buf"]).decode("utf-8", "replace")
            state["buf"] = None
        state["headers"] = {}

    parser = MultipartParser(params[b"boundary"], {
        "on_header_field": on_header_field, "on_header_value": on_header_value, "on_header_end": on_header_end,
        "on_headers_finished": on_headers_finished, "on_part_data": on_part_data, "on_part_end": on_part_end,
    })
    received = 0
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if received > max_file_bytes + FORM_OVERHEAD:
                raise UploadRefused(413, f"the request body exceeds the upload limit of {max_file_bytes} bytes "
                                         f"(server option --max-upload-mb)", "video", limit_bytes=max_file_bytes)
            try:
                parser.write(chunk)
            except UploadRefused:
                raise
            except Exception as e:  # python-multipart's parse errors
                raise UploadRefused(400, f"the multipart body is malformed: {e}", "body")
        if declared is not None and received < int(declared):
            raise UploadRefused(400, f"the request body ended after {received} of the {declared} bytes it declared",
                                "body")
        try:
            parser.finalize()
        except Exception as e:
            raise UploadRefused(400, f"the multipart body is malformed: {e}", "body")
        if state["fh"] is not None or state["buf"] is not None:
            raise UploadRefused(400, "the multipart body ended inside a field (truncated upload)", "body")
    except BaseException:
        if state["fh"] is not None:
            state["fh"].close()
        form.discard()
        raise
    return form


def check_video_header(path: Path, min_side: int, max_side: int) -> None:
    """Refuse frame sizes outside [min_side, max_side] from the container/codec header, before a
    single frame is decoded (a 20000x20000 header would otherwise allocate gigabytes)."""
    import av
    try:
        container = av.open(str(path))
    except Exception:
        return  # not openable: probe() names the problem
    try:
        for s in container.streams.video:
            if s.disposition & s.disposition.attached_pic:
                continue
            w, h = s.codec_context.width, s.codec_context.height
            if w and h and not (min_side <= w <= max_side and min_side <= h <= max_side):
                raise InputError(f"the video's header declares frames of {w}x{h}: each side must be in "
                                 f"[{min_side}, {max_side}] low-res pixels")
            break
    finally:
        container.close()


def probe_input(path: Path) -> dict:
    """Header check, then the runtime's probe (opens the container and decodes the first frame).
    Returns the facts a job record keeps; raises InputError naming the problem."""
    from ..runtime.upscaler import MAX_FRAME, MIN_FRAME
    from ..runtime.video import probe
    check_video_header(path, MIN_FRAME, MAX_FRAME)
    info = probe(path)
    if not (MIN_FRAME <= info.width <= MAX_FRAME and MIN_FRAME <= info.height <= MAX_FRAME):
        raise InputError(f"frame size {info.width}x{info.height} is not supported: each side must be in "
                         f"[{MIN_FRAME}, {MAX_FRAME}] low-res pixels")
    return {"width": info.width, "height": info.height, "frames": info.num_frames,
            "fps": str(info.fps) if info.fps else None, "codec": info.codec, "audio": info.has_audio,
            "duration_s": info.duration_s, "container": info.container}


def file_size(path: Path) -> int:
    return os.stat(path).st_size
