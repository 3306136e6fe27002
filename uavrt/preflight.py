"""Everything about a request that can be checked before a weight is read.

Loading the release model takes minutes (engines, text encoder); a refusal after that is a
wasted minute for a typo. The command layer calls `plan_upscale` first: it probes every input
(decodes one frame), validates every output (location, overwrite, container, codec, CRF), the
frame size, the device and the weights folder's layout, and returns the jobs. Nothing is created
on disk here.

A folder of videos is the exception to "refuse at once": an unreadable video in it does not stop
the others; it comes back as a failed job (and the command exits non-zero after the rest ran).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from .config import BackendConfig, RunConfig, check_device
from .errors import ConfigError, InputError, UavrtError

MAX_FPS = Fraction(1000)


@dataclass
class Job:
    src: Path
    dst: str  # keeps a trailing '/' (a folder target)
    info: object | None = None  # VideoInfo from the probe
    error: UavrtError | None = None  # set: this input cannot be processed (folder of videos only)


def check_fps(fps, param: str = "--fps") -> Fraction | None:
    """--fps: a positive rate up to 1000 (FFmpeg's rate limits, and anything above is a typo)."""
    if fps is None:
        return None
    try:
        f = Fraction(fps) if not isinstance(fps, float) else Fraction(fps).limit_denominator(1_001_000)
    except (TypeError, ValueError, ZeroDivisionError):
        raise ConfigError(param, fps, f"a frame rate in (0, {MAX_FPS}], e.g. 24, 30000/1001 or 29.97") from None
    if not 0 < f <= MAX_FPS:
        raise ConfigError(param, str(fps), f"a frame rate in (0, {MAX_FPS}], e.g. 24, 30000/1001 or 29.97")
    return f


def check_weights_layout(weights, networks) -> None:
    """The release folder has what will be loaded (configs and weight files exist); reads no weights."""
    from .errors import WeightsError
    from .models.release import network_config, scheduler_configs, weight_file
    p = Path(weights)
    if not p.is_dir():
        raise ConfigError("--weights", str(weights), "an existing release weights folder "
                          "(unet/, vae/, propagator/, text_encoder/, tokenizer/, scheduler/, low_res_scheduler/)")
    for name in networks:
        network_config(p, name)
        weight_file(p, name)
    scheduler_configs(p)
    for sub in ("text_encoder", "tokenizer"):
        if not (p / sub).is_dir():
            raise WeightsError(f"weights folder {str(p)!r} has no {sub}/ (the release's CLIP text encoder)")


def check_backend(backend: BackendConfig) -> None:
    check_device(backend.device)
    if backend.engines is not None and not Path(backend.engines).is_dir():
        raise ConfigError("--engines", backend.engines, "an existing folder of exported graphs/engines "
                          "(uavrt export --out FOLDER)")
    if backend.backend == "onnxruntime":
        from .runtime.ort_backend import require_onnxruntime
        require_onnxruntime()
    elif backend.backend == "tensorrt":
        from .export.trt import require_tensorrt
        require_tensorrt()


def check_frames(info, cfg: RunConfig, param: str = "INPUT") -> None:
    from .models.raft.model import MIN_SIZE
    from .runtime.upscaler import MAX_FRAME, MIN_FRAME
    w, h = info.width, info.height
    if not (MIN_FRAME <= w <= MAX_FRAME and MIN_FRAME <= h <= MAX_FRAME):
        raise ConfigError(param, info.path, f"frames with each side in [{MIN_FRAME}, {MAX_FRAME}] px "
                          f"(this input is {w}x{h})")
    least = MIN_SIZE - 7  # RAFT runs at the size rounded up to a multiple of 8, at least MIN_SIZE
    if cfg.sampler.propagation_steps and (w < least or h < least):
        raise ConfigError("--propagation-steps", ",".join(map(str, cfg.sampler.propagation_steps)),
                          f"no propagation steps for {w}x{h} frames: the flows (RAFT) need both sides "
                          f">= {least} px")


def plan_upscale(src, dst: str, cfg: RunConfig, backend: BackendConfig, *, codec="libx264", crf=None,
                 overwrite=False, fps=None, allow_truncated=False, weights=None, demo=False,
                 vae: str = "3d") -> list:
    """-> [Job]: every check `uavrt upscale` can make before loading the model.

    Raises the first refusal for a single input. For a folder of videos, an input that cannot be
    read comes back as Job(error=...) and the others are still planned.
    """
    from .runtime.files import list_inputs
    from .runtime.video import probe
    from .runtime.video.writer import check_output

    from .errors import check_choice
    check_choice("--vae", vae, ("3d", "video"))
    if demo == bool(weights):
        raise ConfigError("--weights", weights, "a weights folder, or --demo (exactly one of them)")
    check_backend(backend)
    fps = check_fps(fps)
    src = Path(src)
    if not src.exists():
        raise ConfigError("INPUT", str(src), "an existing video file, image folder or folder of videos")
    inputs = list_inputs(src)
    folder_of_videos = src.is_dir() and inputs != [src]
    dst = os.fspath(dst)
    if folder_of_videos:
        if Path(dst).exists() and not Path(dst).is_dir():
            raise ConfigError("--output", dst, "a folder for a folder of input videos (this is an existing file)")
        if Path(dst).suffix.lower() in _video_suffixes() and not dst.endswith(("/", os.sep)):
            raise ConfigError("--output", dst, "a folder (e.g. 'results/') for a folder of input videos; "
                              "each video is written there as NAME.mp4")
        base = dst.rstrip("/" + os.sep) or dst
        jobs = [Job(p, os.path.join(base, f"{p.stem}.mp4")) for p in inputs]
    else:
        jobs = [Job(src, dst)]
    seen = {}
    for job in jobs:
        if _same_place(job.src, job.dst):
            raise ConfigError("--output", job.dst, f"a path other than the input {str(job.src)!r} "
                              "(the input is never replaced, also not with --overwrite)")
        if job.dst in seen:
            raise ConfigError("--output", job.dst, f"one output per input ({seen[job.dst].name} and "
                              f"{job.src.name} would both be written there)")
        seen[job.dst] = job.src
        check_output(job.dst, codec=codec, crf=crf, overwrite=overwrite)
        try:
            job.info = probe(job.src, allow_truncated=allow_truncated)
            if job.info.is_image_sequence is False and fps is not None:
                raise ConfigError("--fps", str(fps), "no --fps for a video input (its own timing is kept); "
                                  "--fps sets the rate of an image-folder input")
            check_frames(job.info, cfg)
        except UavrtError as e:
            if not folder_of_videos or isinstance(e, ConfigError) and e.param.startswith("--"):
                raise
            job.error = e
    if folder_of_videos and all(j.error for j in jobs):
        raise InputError(f"no video in {str(src)!r} can be read: " + "; ".join(f"{j.src.name}: {j.error}" for j in jobs))
    if weights:
        check_weights_layout(weights, ["unet", f"vae_{vae}"] + (["raft"] if cfg.sampler.propagation_steps else []))
    return jobs


def _video_suffixes():
    from .runtime.files import VIDEO_SUFFIXES
    return VIDEO_SUFFIXES


def _same_place(src: Path, dst: str) -> bool:
    d = Path(dst)
    if d.exists():
        return os.path.samefile(src, d)
    return os.path.realpath(src) == os.path.realpath(d)
