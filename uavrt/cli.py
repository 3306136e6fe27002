"""`uavrt` command line: flags -> frozen configs -> library calls. Errors exit non-zero with a
message naming the parameter; no traceback for expected errors."""

from __future__ import annotations

import argparse
import sys
from fractions import Fraction
from pathlib import Path

from .errors import ConfigError, UavrtError


def _int_list(text: str) -> tuple:
    if not text:
        return ()
    try:
        return tuple(int(x) for x in text.replace(" ", "").split(",") if x)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers like 24,26,28, got {text!r}")


def _str_list(text: str) -> tuple:
    return tuple(x for x in text.replace(" ", "").split(",") if x)


def _add_model_args(p, weights_required=False):
    g = p.add_argument_group("model")
    g.add_argument("--weights", help="release weights folder (unet/, vae/, propagator/, text_encoder/, ...)")
    g.add_argument("--demo", action="store_true", help="tiny seeded demo model (random weights, no download)")
    g.add_argument("--backend", default="torch", help="torch | onnxruntime | tensorrt")
    g.add_argument("--engines", help="folder of exported ONNX graphs / TensorRT engines (uavrt export)")
    g.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N")
    g.add_argument("--dtype", default="fp32", help="fp32 | fp16 (U-Net and text encoder; VAE/RAFT stay fp32)")


def _add_run_args(p):
    g = p.add_argument_group("sampling (release defaults)")
    g.add_argument("-n", "--noise-level", type=int, default=120)
    g.add_argument("-g", "--guidance", type=float, default=6.0)
    g.add_argument("-s", "--steps", type=int, default=30)
    g.add_argument("-p", "--propagation-steps", type=_int_list, default=(), help="e.g. 24,26,28")
    g.add_argument("--prompt", default="", help="caption of the video (the release uses LLaVA's)")
    g.add_argument("--added-prompt", default="best quality, extremely detailed")
    g.add_argument("--negative-prompt", default="blur, worst quality")
    g.add_argument("--seed", type=int, default=10)
    g.add_argument("--color-fix", default="none", help="none | wavelet | adain")
    g.add_argument("--vae", default="3d", help="3d | video")
    g.add_argument("--propagator", default="torch", help="torch (reference) | kernel (fused warp+occlusion)")
    g.add_argument("--fix-flow-resize", action="store_true", help="correct the release's flow-rescale quirk")
    g = p.add_argument_group("memory and tiling")
    g.add_argument("--tile", type=int, default=None, help="tile size in low-res pixels (default: auto as release)")
    g.add_argument("--tile-overlap", type=int, default=64)
    g.add_argument("--tile-mode", default="blend", help="blend (seamless) | release (independent crops)")
    g.add_argument("--clip-merge", default="release", help="release (0.5 running average) | mean")
    g.add_argument("--window", type=int, default=32, help="frames per temporal window (bounds memory)")
    g.add_argument("--window-overlap", type=int, default=4)


def run_config(a):
    from .config import (ClipConfig, DecodeConfig, PropagationConfig, RunConfig, SamplerConfig, TileConfig,
                         WindowConfig)
    return RunConfig(
        sampler=SamplerConfig(steps=a.steps, guidance_scale=a.guidance, noise_level=a.noise_level,
                              propagation_steps=a.propagation_steps, prompt=a.prompt, added_prompt=a.added_prompt,
                              negative_prompt=a.negative_prompt, seed=a.seed),
        propagation=PropagationConfig(propagator=a.propagator, fix_flow_resize=a.fix_flow_resize),
        clips=ClipConfig(merge=a.clip_merge),
        tiles=TileConfig(size=a.tile, overlap=a.tile_overlap, mode=a.tile_mode),
        window=WindowConfig(frames=a.window, overlap=a.window_overlap),
        decode=DecodeConfig(color_fix=a.color_fix.lower()),
    )


def backend_config(a):
    from .config import BackendConfig
    return BackendConfig(backend=a.backend, device=a.device, precision=a.dtype, engines=a.engines)


def build_upscaler(a, cfg):
    from .runtime.upscaler import Upscaler
    if a.demo == bool(a.weights):
        raise ConfigError("--weights", a.weights, "a weights folder, or --demo (exactly one of them)")
    if a.demo:
        return Upscaler.demo(cfg, backend_config(a), vae=a.vae)
    return Upscaler.from_weights(a.weights, cfg, backend_config(a), vae=a.vae)


class _Progress:
    """tqdm bars for frames and denoising steps, with ETA."""

    def __init__(self, enabled=True):
        self.enabled, self.bars = enabled, {}

    def __call__(self, kind, done, total):
        if not self.enabled:
            return
        from tqdm import tqdm
        if kind == "video":
            self.close()
            self.bars["frames"] = tqdm(total=total, unit="frame", desc="frames", position=0)
            return
        bar = self.bars.get(kind)
        if bar is None or (kind == "step" and done == 1):
            if bar is not None:
                bar.close()
            bar = self.bars[kind] = tqdm(total=total, unit=kind, desc=kind + "s", position=1, leave=False)
        bar.n = done
        bar.refresh()

    def close(self):
        for b in self.bars.values():
            b.close()
        self.bars = {}


def cmd_upscale(a):
    from .fsutil import check_writable
    from .runtime.files import OutputConfig, list_inputs, upscale_file
    from .runtime.video import is_folder_target
    cfg = run_config(a)
    inputs = list_inputs(a.input)
    if not inputs[0].exists():
        raise ConfigError("INPUT", str(a.input), "an existing video file, image folder or folder of videos")
    out = Path(a.output)
    jobs = [(src, out / f"{src.stem}.mp4") for src in inputs] if len(inputs) > 1 else [(inputs[0], out)]
    for _, dst in jobs:  # refuse before loading anything
        if not is_folder_target(dst):
            check_writable(dst, a.overwrite)
    up = build_upscaler(a, cfg)
    if up.info.get("demo"):
        from .models.demo import DEMO_NOTICE
        print(DEMO_NOTICE, file=sys.stderr)
    for src, dst in jobs:
        prog = _Progress(not a.quiet)
        try:
            upscale_file(up, src, dst, OutputConfig(codec=a.codec, crf=a.crf, overwrite=a.overwrite, fps=a.fps), prog)
        finally:
            prog.close()
        print(f"wrote {dst}")
    return 0


def cmd_golden(a):
    from .golden import Context, run_golden
    from .config import BackendConfig
    from .runtime.factory import make_backend
    ctx = Context(backend=make_backend(BackendConfig(backend=a.backend, device=a.device)), propagator=a.propagator)
    results = run_golden(a.dir, ctx, only=_str_list(a.only) if a.only else None, echo=print)
    by_case: dict = {}
    for r in results:
        by_case[r.case] = by_case.get(r.case, True) and r.passed
    passed = sum(by_case.values())
    print(f"{passed} passed, {len(by_case) - passed} failed")
    return 0 if passed == len(by_case) and by_case else 1


def cmd_convert(a):
    from .models.convert import convert_weights
    for p in convert_weights(a.weights, a.out, fp16=a.fp16, overwrite=a.overwrite):
        print(f"wrote {p}")
    return 0


def cmd_info(a):
    from .info import environment_report, format_report, usable_backends
    print(format_report(environment_report(), usable_backends()))
    if a.compile_kernels:
        from .kernels import compile_kernels
        for r in compile_kernels(list(_str_list(a.compile_kernels))):
            print(f"kernel {r['arch']}: {len(r['cubin'])} bytes CUBIN in {r['seconds']:.2f} s")
    return 0


def cmd_export(a):
    from .export.cli import run_export
    return run_export(a)


def cmd_verify(a):
    from .runtime.verify import run_verify_cli
    return run_verify_cli(a)


def cmd_bench(a):
    from .bench.cli import run_bench
    return run_bench(a)


def build_parser():
    p = argparse.ArgumentParser(prog="uavrt", description="Upscale-A-Video inference runtime")
    sub = p.add_subparsers(dest="cmd", required=True)

    u = sub.add_parser("upscale", help="upscale a video (x4)")
    u.add_argument("input", help="video file, image folder, or folder of videos")
    u.add_argument("-o", "--output", required=True, help="output video (or folder when INPUT holds videos)")
    u.add_argument("--overwrite", action="store_true")
    u.add_argument("--codec", default="libx264", help="libx264 | libx265 | ffv1 | prores_ks")
    u.add_argument("--crf", type=int, default=None)
    u.add_argument("--fps", type=Fraction, default=None, help="frame rate for image-folder inputs (default 30)")
    u.add_argument("-q", "--quiet", action="store_true")
    _add_model_args(u)
    _add_run_args(u)
    u.set_defaults(func=cmd_upscale)

    g = sub.add_parser("golden", help="run golden-vector cases and compare")
    g.add_argument("dir")
    g.add_argument("--backend", default="torch")
    g.add_argument("--device", default="cpu")
    g.add_argument("--propagator", default="torch")
    g.add_argument("--only", help="comma-separated case names or kinds")
    g.set_defaults(func=cmd_golden)

    c = sub.add_parser("convert", help="release weights -> safetensors (optionally fp16)")
    c.add_argument("weights")
    c.add_argument("out")
    c.add_argument("--fp16", action="store_true")
    c.add_argument("--overwrite", action="store_true")
    c.set_defaults(func=cmd_convert)

    i = sub.add_parser("info", help="versions, GPU and usable backends")
    i.add_argument("--compile-kernels", help="compile the CUDA kernels for e.g. sm_80,sm_90 (no GPU needed)")
    i.set_defaults(func=cmd_info)

    e = sub.add_parser("export", help="export ONNX graphs (and TensorRT engines with --trt)")
    e.add_argument("--weights")
    e.add_argument("--demo", action="store_true")
    e.add_argument("--out", required=True)
    e.add_argument("--precision", default="fp32,fp16")
    e.add_argument("--networks", default="unet,vae_3d,vae_video,raft")
    e.add_argument("--overwrite", action="store_true")
    e.add_argument("--trt", action="store_true", help="also build TensorRT engines from the fp16 graphs")
    e.add_argument("--opt-level", type=int, default=3)
    e.add_argument("--timing-cache")
    e.add_argument("--version-compatible", action="store_true")
    e.add_argument("--hardware-compatible", action="store_true")
    e.add_argument("--workspace-gb", type=float)
    e.add_argument("--tile", type=int, default=None, help="latent tile size the engines are optimised for")
    e.add_argument("--max-size", type=int, default=None, help="largest low-res side the engines accept")
    e.add_argument("--no-guidance", action="store_true", help="engines for guidance off (batch 1)")
    e.set_defaults(func=cmd_export)

    v = sub.add_parser("verify", help="compare a backend with ONNX Runtime and PyTorch on the same inputs")
    v.add_argument("--backend", default="tensorrt")
    v.add_argument("--engines", required=True)
    v.add_argument("--weights")
    v.add_argument("--demo", action="store_true")
    v.add_argument("--networks", default="unet,vae_3d,raft")
    v.add_argument("--device", default="cuda")
    v.set_defaults(func=cmd_verify)

    b = sub.add_parser("bench", help="benchmarks: throughput, per-stage latency, memory, efficiency")
    b.set_defaults(func=cmd_bench)
    try:
        from .bench.cli import add_bench_args
        add_bench_args(b)
    except ImportError:
        pass
    return p


def _terminate(signum, frame):
    raise KeyboardInterrupt  # so every `finally` removes its temporary output


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    import signal
    import threading
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        return args.func(args)
    except UavrtError as e:
        print(f"uavrt {args.cmd}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; no partial output was kept", file=sys.stderr)
        return 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
