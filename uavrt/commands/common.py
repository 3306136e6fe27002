"""Flag groups shared by several commands, and flags -> frozen configs."""

from __future__ import annotations

import argparse
import sys

from ..errors import ConfigError


def int_list(text: str) -> tuple:
    if not text:
        return ()
    try:
        return tuple(int(x) for x in text.replace(" ", "").split(",") if x)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers like 24,26,28, got {text!r}")


def str_list(text: str) -> tuple:
    return tuple(x for x in text.replace(" ", "").split(",") if x)


def add_model_args(p):
    g = p.add_argument_group("model")
    g.add_argument("--weights", help="release weights folder (unet/, vae/, propagator/, text_encoder/, ...)")
    g.add_argument("--demo", action="store_true", help="tiny demo model shipped with uavrt (no download)")
    g.add_argument("--backend", default="torch", help="torch | onnxruntime | tensorrt")
    g.add_argument("--engines", help="folder of exported ONNX graphs / TensorRT engines (uavrt export)")
    g.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N")
    g.add_argument("--dtype", default="fp32", help="fp32 | fp16 (U-Net and text encoder; VAE/RAFT stay fp32)")
    g.add_argument("--vae", default="3d", help="3d | video")


def add_run_args(p):
    g = p.add_argument_group("sampling (release defaults)")
    g.add_argument("-n", "--noise-level", type=int, default=120)
    g.add_argument("-g", "--guidance", type=float, default=6.0)
    g.add_argument("-s", "--steps", type=int, default=30)
    g.add_argument("-p", "--propagation-steps", type=int_list, default=(), help="e.g. 24,26,28")
    g.add_argument("--prompt", default="", help="caption of the video (the release uses LLaVA's)")
    g.add_argument("--added-prompt", default="best quality, extremely detailed")
    g.add_argument("--negative-prompt", default="blur, worst quality")
    g.add_argument("--seed", type=int, default=10)
    g.add_argument("--color-fix", default="none", help="none | wavelet | adain")
    g.add_argument("--propagator", default="torch", help="torch (reference) | kernel (fused warp+occlusion)")
    g.add_argument("--fix-flow-resize", action="store_true", help="correct the release's flow-rescale quirk")
    g = p.add_argument_group("memory and tiling")
    g.add_argument("--tile", type=int, default=None, help="tile size in low-res pixels (default: auto as release)")
    g.add_argument("--tile-overlap", type=int, default=64)
    g.add_argument("--tile-mode", default="blend", help="blend (seamless) | release (independent crops)")
    g.add_argument("--clip-merge", default="release", help="release (0.5 running average) | mean")
    g.add_argument("--window", type=int, default=32, help="frames per temporal window (bounds memory)")
    g.add_argument("--window-overlap", type=int, default=4)
    g.add_argument("--unet-batch", type=int, default=1, help="(tile, clip) pieces per U-Net call")


def run_config(a):
    """The RunConfig of the run flags (names as in uavrt.options)."""
    from ..options import OPTION_NAMES, run_config as from_options
    return from_options({k: getattr(a, k) for k in OPTION_NAMES if hasattr(a, k)})


def backend_config(a):
    from ..config import BackendConfig
    return BackendConfig(backend=a.backend, device=a.device, precision=a.dtype, engines=a.engines)


def build_upscaler(a, cfg):
    from ..runtime.upscaler import Upscaler
    if a.demo == bool(a.weights):
        raise ConfigError("--weights", a.weights, "a weights folder, or --demo (exactly one of them)")
    if a.demo:
        return Upscaler.demo(cfg, backend_config(a), vae=a.vae)
    return Upscaler.from_weights(a.weights, cfg, backend_config(a), vae=a.vae)


class Progress:
    """tqdm bars for frames and denoising steps, with ETA."""

    def __init__(self, enabled=True):
        self.enabled, self.bars = enabled, {}

    def __call__(self, kind, done, total):
        if not self.enabled:
            return
        from tqdm import tqdm
        if kind == "video":
            self.close()
            self.bars["frames"] = tqdm(total=total, unit="frame", desc="frames", position=0, file=sys.stderr)
            return
        if kind == "workers":  # a cluster's per-worker throughput, shown beside the windows bar
            bar = self.bars.get("windows")
            if bar is not None:
                bar.set_postfix_str(" ".join(f"{n.rsplit('-', 1)[-1]}:{w['fps'] or 0:.2f}fps"
                                             for n, w in total.items()), refresh=True)
            return
        bar = self.bars.get(kind)
        if bar is None or (kind == "step" and done == 1):
            if bar is not None:
                bar.close()
            bar = self.bars[kind] = tqdm(total=total, unit=kind, desc=kind + "s", position=1, leave=False,
                                         file=sys.stderr)
        bar.n = done
        bar.refresh()

    def close(self):
        for b in self.bars.values():
            b.close()
        self.bars = {}


class JsonProgress:
    """One JSON object per progress event on stderr (for machines): {"event", "done", "total", "t"};
    for a cluster also {"event": "workers", "workers": {name: {windows, frames, fps, state, ...}}}."""

    def __init__(self):
        import time
        self.t0 = time.monotonic()

    def __call__(self, kind, done, total):
        import json
        import time
        ev = {"event": kind, "t": round(time.monotonic() - self.t0, 3)}
        if kind == "workers":
            ev["workers"] = total
        else:
            ev.update(done=done, total=total)
        print(json.dumps(ev), file=sys.stderr, flush=True)

    def close(self):
        pass
