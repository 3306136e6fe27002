"""GPU benchmark: fused propagation kernel (uavrt.kernels) vs the torch reference.

For each latent size it reports the time per propagation step (one frame of one pass) and the
memory bandwidth the kernel achieves, against the card's peak:
- kernel step: one launch of the fused step kernel (warp + occlusion check + blend, C channels);
- kernel/ref call: a whole `propagate` call (both passes over T frames) divided by its
  2*(T-1) steps, i.e. what the pipeline pays per step including set-up;
- bandwidth counts each byte a step must move once: read the propagated frame, the current
  frame and both flows (2 x 2 x float32 per pixel), write the output frame. Bilinear reads of
  neighbours that hit in cache are not counted, so this is the useful ("effective") bandwidth.
Timing: CUDA events on the current stream, warm-up runs, median of N.

    python benchmarks/kernel_propagation.py [--sizes 270x480,480x854] [--dtype fp16] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

# peak DRAM bandwidth, GB/s (vendor datasheets); first matching name fragment wins
PEAK_GBPS = [
    ("H200", 4800.0),
    ("H100 PCIe", 2000.0),
    ("H100 NVL", 3900.0),
    ("H100", 3350.0),  # SXM5, HBM3
    ("A100 80GB PCIe", 1935.0),
    ("A100-PCIE-40GB", 1555.0),
    ("A100-SXM4-80GB", 2039.0),
    ("A100-SXM4-40GB", 1555.0),
    ("A100", 1555.0),
]
DTYPES = {"fp32": "float32", "fp16": "float16"}


def peak_for(name: str) -> float | None:
    for fragment, gbps in PEAK_GBPS:
        if fragment.lower() in name.lower():
            return gbps
    return None


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", default="64x64,180x320,270x480,480x854,720x1280",
                   help="latent sizes HxW, comma separated (latents are at the low-res input size)")
    p.add_argument("--channels", type=int, default=4)
    p.add_argument("--frames", type=int, default=8, help="T (the UNet's clip length)")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--dtype", default="fp32,fp16", help="fp32, fp16 or both (comma separated)")
    p.add_argument("--interpolation", default="nearest", choices=["nearest", "bilinear"])
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--iters", type=int, default=30, help="timed runs; the median is reported")
    p.add_argument("--peak-gbps", type=float, default=None, help="override the card's peak bandwidth")
    p.add_argument("--json", default="kernel_propagation.json", help="where to write the results")
    return p.parse_args(argv)


def inputs(B, C, T, H, W, dtype):
    """Latents and a plausible flow pair (smooth motion; backward ~ -forward so ~half pass the check)."""
    import torch
    import torch.nn.functional as F
    g = torch.Generator(device="cuda").manual_seed(0)
    x = torch.randn(B, C, T, H, W, device="cuda", generator=g).to(dtype)
    coarse = torch.randn(B, 2, T - 1, max(H // 16, 1), max(W // 16, 1), device="cuda", generator=g) * 3
    fw = F.interpolate(coarse, size=(T - 1, H, W), mode="trilinear", align_corners=False).contiguous()
    bw = (-fw + torch.randn(fw.shape, device="cuda", generator=g) * 0.3).contiguous()
    return x, fw, bw


def bench_size(args, H, W, dtype_name):
    import torch

    from uavrt import kernels
    from uavrt.kernels import gpu as kgpu
    from uavrt.kernels.selfcheck import median_ms
    from uavrt.models import propagation as ref

    dtype = getattr(torch, DTYPES[dtype_name])
    B, C, T = args.batch, args.channels, args.frames
    x, fw, bw = inputs(B, C, T, H, W, dtype)
    kw = dict(interpolation=args.interpolation, mode="fuse", fuse_scale=0.5, alpha1=0.001, alpha2=0.05)
    steps = 2 * (T - 1)

    y = x.contiguous().clone()
    opts = dict(nearest=args.interpolation == "nearest", copy=False, fuse_w=0.5, fuse_c=0.5, alpha1=0.001,
                alpha2=0.05)
    step_ms = median_ms(lambda: kgpu.step(y, 1, 0, fw, bw, 0, **opts), x.device, args.warmup, args.iters * 4)
    kernel_call_ms = median_ms(lambda: kernels.propagate(x, fw, bw, **kw), x.device, args.warmup, args.iters)
    # the reference promotes fp16 latents to fp32 through the fp32 mask; time it as the pipeline would call it
    ref_call_ms = median_ms(lambda: ref.propagate(x, fw, bw, **kw), x.device, args.warmup, args.iters)

    es = x.element_size()
    bytes_per_step = B * H * W * (3 * C * es + 2 * 2 * 4)
    gbps = bytes_per_step / (step_ms * 1e-3) / 1e9
    return {
        "size": f"{H}x{W}", "dtype": dtype_name, "B": B, "C": C, "T": T, "interpolation": args.interpolation,
        "kernel_step_us": step_ms * 1e3, "kernel_call_us_per_step": kernel_call_ms * 1e3 / steps,
        "ref_call_us_per_step": ref_call_ms * 1e3 / steps,
        "speedup_call": ref_call_ms / kernel_call_ms, "bytes_per_step": bytes_per_step, "kernel_step_gbps": gbps,
    }


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        import torch
    except ImportError:
        sys.exit("kernel_propagation: torch is not installed")
    if not torch.cuda.is_available():
        sys.exit("kernel_propagation: no CUDA GPU here (torch.cuda.is_available() is False); "
                 "this benchmark times the CUDA kernel and needs one")
    device = torch.cuda.get_device_name()
    peak = args.peak_gbps if args.peak_gbps is not None else peak_for(device)
    sizes = [tuple(int(v) for v in s.lower().split("x")) for s in args.sizes.split(",") if s]
    dtypes = [d.strip() for d in args.dtype.split(",") if d.strip()]
    for d in dtypes:
        if d not in DTYPES:
            sys.exit(f"kernel_propagation: --dtype {d!r} is not one of {', '.join(DTYPES)}")

    rows = []
    with torch.inference_mode():
        for H, W in sizes:
            for d in dtypes:
                row = bench_size(args, H, W, d)
                row["pct_of_peak"] = 100 * row["kernel_step_gbps"] / peak if peak else None
                rows.append(row)

    print(f"\n{device}, peak {peak or 'unknown (pass --peak-gbps)'} GB/s, B={args.batch} C={args.channels} "
          f"T={args.frames}, {args.interpolation}, median of {args.iters}\n")
    print("| latent | dtype | kernel step (us) | kernel call (us/step) | torch ref (us/step) | speedup "
          "| kernel GB/s | % of peak |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        pct = f"{r['pct_of_peak']:.0f}%" if r["pct_of_peak"] is not None else "n/a"
        print(f"| {r['size']} | {r['dtype']} | {r['kernel_step_us']:.1f} | {r['kernel_call_us_per_step']:.1f} | "
              f"{r['ref_call_us_per_step']:.1f} | {r['speedup_call']:.1f}x | {r['kernel_step_gbps']:.0f} | {pct} |")
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"device": device, "peak_gbps": peak, "torch": torch.__version__,
                               "args": vars(args), "results": rows}, indent=2))
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
