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
    g.add_argument("--compile", action="store_true", help="torch backend: torch.compile the U-Net and VAE")
    g.add_argument("--cuda-graphs", action="store_true", help="torch backend on CUDA: capture the U-Net")


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
    g.add_argument("--unet-batch", type=unet_batch_arg, default=1,
                   help="(tile, clip) pieces per U-Net call, or auto (from a memory budget); 1 = release-shaped")


def run_config(a):
    """The RunConfig of the run flags (names as in uavrt.options)."""
    from ..options import OPTION_NAMES, run_config as from_options
    return from_options({k: getattr(a, k) for k in OPTION_NAMES if hasattr(a, k)})


def backend_config(a):
    from ..config import BackendConfig, TorchOptions
    return BackendConfig(backend=a.backend, device=a.device, precision=a.dtype, engines=a.engines,
                         torch=TorchOptions(compile=getattr(a, "compile", False),
                                            cuda_graphs=getattr(a, "cuda_graphs", False)))


def unet_batch_arg(text: str):
    """--unet-batch: a positive integer, or 'auto' (None: chosen from the memory budget)."""
    if text == "auto":
        return None
    try:
        return int(text)
    except ValueError:
        raise ConfigError("--unet-batch", text, "a positive integer or auto") from None


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

    KINDS = ("video", "frames", "step")  # other kinds (window_*, written) are for machine readers

    def __call__(self, kind, done, total):
        if not self.enabled or kind not in self.KINDS:
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
    """`--progress json`: one JSON object per event on stderr (one line each, flushed).

    Every object has "event" (the progress kind), "t" (seconds since start) and "peak_rss_mb"
    (and "peak_gpu_mb" on CUDA). window_started / window_finished / window_resumed carry the
    window's frame span "start", "stop"; step: "step", "steps"; frames (frames computed, in
    order) and written (frames encoded): "done", "total" and "eta_s" (from this run's rate);
    on a Ray cluster also {"event": "workers", "workers": {name: {windows, frames, fps, state, ...}}}.
    """

    def __init__(self, stream=None):
        import time
        self._clock = time.monotonic
        self._t0 = self._clock()
        self._stream = stream or sys.stderr
        self._total = None
        self._rate_from = {}  # kind -> (t, done) of its first event: the rate is this run's own

    def __call__(self, kind, done, total):
        import json
        t = self._clock() - self._t0
        ev = {"event": kind, "t": round(t, 3)}
        if kind == "workers":
            ev["workers"] = total
        elif kind.startswith("window"):
            ev.update(start=done, stop=total)
        elif kind == "step":
            ev.update(step=done, steps=total)
        else:
            if kind == "video":
                self._total = total
            total = total if total is not None else self._total
            ev.update(done=done, total=total)
            if kind in ("frames", "written") and total:
                t1, d1 = self._rate_from.setdefault(kind, (t, done))
                if done > d1 and t > t1:
                    ev["eta_s"] = round((total - done) * (t - t1) / (done - d1), 1)
        ev.update(_peak_memory())
        print(json.dumps(ev), file=self._stream, flush=True)

    def notice(self, message: str):
        import json
        ev = {"event": "notice", "t": round(self._clock() - self._t0, 3), "message": message, **_peak_memory()}
        print(json.dumps(ev), file=self._stream, flush=True)

    def close(self):
        pass


def _peak_memory() -> dict:
    import resource
    out = {"peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}  # KiB on Linux
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        out["peak_gpu_mb"] = round(torch.cuda.max_memory_allocated() / 2 ** 20, 1)
    return out


def make_progress(kind: str | None):
    """bar (the default), json or none."""
    if kind == "json":
        return JsonProgress()
    return Progress(kind != "none")
