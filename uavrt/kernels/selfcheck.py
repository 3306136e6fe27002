"""The kernel's check for a machine with a GPU: CUDA launch vs the host build, and its speed.

`gpu_check('cuda:0')` is what the GPU acceptance script calls (only where torch sees a GPU):
every mode (nearest/bilinear x fuse/copy) in fp32 and fp16 at odd sizes, plus flow_warp and the
consistency check, compared element by element with the g++ build on the same inputs (expected:
bit-exact, see tests/kernels/test_gpu.py); then the whole `propagate` call timed against the torch
reference on the same device (CUDA events, warm-up, median). CI runs the same code on the CPU
against the emulated driver (`launcher=gpu` inside `emulator.emulated_cuda()`, device 'cpu').
"""

from __future__ import annotations

import functools
import statistics
import time

import torch

from ..errors import BackendUnavailable
from . import api, host
from .nvrtc import nvrtc_version

VARIANTS = (("nearest", "fuse"), ("bilinear", "fuse"), ("nearest", "copy"), ("bilinear", "copy"))
DTYPES = {"fp32": torch.float32, "fp16": torch.float16}
CHECK_SHAPE = (2, 4, 6, 37, 61)  # B, C, T, h, w: odd, several blocks of threads, a partial last one
TIME_SHAPES = ((1, 4, 8, 135, 240), (1, 4, 8, 270, 480))  # latents of 540p and 1080p inputs (x4 output)


def flow_pair(B: int, T1: int, H: int, W: int, *, seed: int, scale: float = 4.0, block: int = 6):
    """Flow pairs [B, 2, T1, H, W] (float32, CPU) that exercise every branch of the kernel.

    Per block of pixels, one of: smooth random motion up to ~`scale` px, large motion sending
    samples outside the frame, integer displacements (samples exactly on pixels), half-pixel
    displacements (nearest ties), and an unrelated backward flow (occlusion). Elsewhere the
    backward flow is the negated forward flow plus noise, and flows are constant within a
    block, so many pixels pass the consistency check and many fail it.
    """
    g = torch.Generator().manual_seed(seed)
    shape = (B, 2, T1, H, W)
    hb, wb = -(-H // block), -(-W // block)

    def blocks(t):  # [B, k, T1, hb, wb] -> [B, k, T1, H, W], constant per block
        return t.repeat_interleave(block, 3).repeat_interleave(block, 4)[..., :H, :W]

    coarse = (B, 2, T1, hb, wb)
    kind = blocks(torch.randint(0, 5, (B, 1, T1, hb, wb), generator=g)).expand(shape)
    smooth = blocks(torch.randn(coarse, generator=g) * scale) + torch.randn(shape, generator=g) * 0.2
    far = blocks(torch.randn(coarse, generator=g) * max(H, W))
    integer = blocks(torch.randint(-3, 4, coarse, generator=g).float())
    fw = torch.where(kind == 1, far, smooth)
    fw = torch.where(kind == 2, integer, fw)
    fw = torch.where(kind == 3, integer + 0.5, fw)
    bw = -fw + torch.randn(shape, generator=g) * 0.1
    bw = torch.where(kind == 4, torch.randn(shape, generator=g) * scale, bw)  # occluded: unrelated flow
    return fw.contiguous(), bw.contiguous()


def median_ms(fn, device: torch.device, warmup: int, iters: int) -> float:
    """Median milliseconds of fn() after `warmup` calls: CUDA events on the current stream on a GPU,
    wall clock on the CPU."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(iters):
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end))
        else:
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def _compare(got: torch.Tensor, want: torch.Tensor) -> dict:
    got = got.cpu()
    diff = (got.float() - want.float()).abs()
    return {"bit_exact": bool(torch.equal(got, want)), "max_abs_diff": float(diff.max()) if diff.numel() else 0.0,
            "elements_differing": int((got != want).sum())}


def gpu_check(device: str = "cuda:0", *, check_shape=CHECK_SHAPE, time_shapes=TIME_SHAPES, warmup: int = 5,
              iters: int = 20, launcher=None, seed: int = 0) -> dict:
    """Compare the CUDA launch with the host build and time it against the torch reference.

    Call only where torch sees a GPU (the caller checks), or with `launcher=gpu` on device 'cpu'
    inside `emulator.emulated_cuda()` (CI). Returns a JSON-able dict: `comparisons` (one row per
    kernel, dtype and mode: bit_exact, max_abs_diff, elements_differing), `all_bit_exact`, and
    `timings` (per latent shape and dtype: median ms of a whole propagate call for the kernel and
    the torch reference, and their ratio).
    """
    from ..models import propagation as ref  # the torch reference, timed beside the kernel
    dev = torch.device(device)
    if launcher is None:  # the pipeline's entry point (the custom op, dispatching on the device)
        from . import gpu, propagate
        fused, pieces, launch_name = propagate, gpu, "uavrt.kernels.propagate"
    else:  # the same loop on a named launcher (gpu.py on the emulated driver)
        fused, pieces = functools.partial(api.propagate_with, launcher), launcher
        launch_name = f"uavrt.kernels.api.propagate_with({launcher.__name__})"

    def on_device(t):
        return t.to(dev, copy=True)

    try:
        nvrtc = nvrtc_version()
    except BackendUnavailable:  # only a launcher that needs no CUBIN gets this far without NVRTC
        nvrtc = None
    cuda = dev.type == "cuda"
    out = {"device": str(dev), "device_name": torch.cuda.get_device_name(dev) if cuda else "cpu",
           "capability": list(torch.cuda.get_device_capability(dev)) if cuda else None,
           "launch": launch_name, "torch": torch.__version__, "nvrtc": nvrtc,
           "check_shape": list(check_shape), "comparisons": [], "timings": []}
    B, C, T, h, w = check_shape
    fw, bw = flow_pair(B, T - 1, h, w, seed=seed)
    x32 = torch.randn(check_shape, generator=torch.Generator().manual_seed(seed + 1)) * 2
    fwd, bwd = on_device(fw), on_device(bw)
    with torch.inference_mode():
        for dname, dtype in DTYPES.items():
            x = x32.to(dtype)
            xd = on_device(x)
            for interpolation, mode in VARIANTS:
                opts = dict(interpolation=interpolation, mode=mode, fuse_scale=0.5, alpha1=0.001, alpha2=0.05)
                want = api.propagate_with(host, x, fw, bw, **opts)
                out["comparisons"].append({"kernel": "propagate", "dtype": dname, "interpolation": interpolation,
                                           "mode": mode, **_compare(fused(xd, fwd, bwd, **opts), want)})
            f0, b0, x0 = fw[:, :, 0].contiguous(), bw[:, :, 0].contiguous(), x[:, :, 0].contiguous()
            for nearest in (True, False):
                got = pieces.flow_warp(on_device(x0), on_device(f0), nearest)
                out["comparisons"].append({"kernel": "flow_warp", "dtype": dname,
                                           "interpolation": "nearest" if nearest else "bilinear", "mode": None,
                                           **_compare(got, host.flow_warp(x0, f0, nearest))})
        got = pieces.fb_check(on_device(f0), on_device(b0), 0.001, 0.05)
        out["comparisons"].append({"kernel": "fb_check", "dtype": "fp32", "interpolation": "bilinear", "mode": None,
                                   **_compare(got, host.fb_check(f0, b0, 0.001, 0.05))})
        out["all_bit_exact"] = all(c["bit_exact"] for c in out["comparisons"])

        opts = dict(interpolation="nearest", mode="fuse", fuse_scale=0.5, alpha1=0.001, alpha2=0.05)  # the release's
        for shape in time_shapes:
            B, C, T, h, w = shape
            fw, bw = (on_device(f) for f in flow_pair(B, T - 1, h, w, seed=seed + 2))
            for dname, dtype in DTYPES.items():
                x = on_device((torch.randn(shape, generator=torch.Generator().manual_seed(seed + 3)) * 2).to(dtype))
                k_ms = median_ms(lambda: fused(x, fw, bw, **opts), dev, warmup, iters)
                r_ms = median_ms(lambda: ref.propagate(x, fw, bw, **opts), dev, warmup, iters)
                out["timings"].append({"shape": list(shape), "dtype": dname, "interpolation": opts["interpolation"],
                                       "kernel_ms": k_ms, "reference_ms": r_ms, "speedup": r_ms / k_ms,
                                       "warmup": warmup, "iters": iters, "statistic": "median"})
    return out
