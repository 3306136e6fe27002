"""Quality of the TRAINED TINY DEMO MODEL under the runtime's approximations (not a test).

    python benchmarks/quality.py [--out benchmarks/results] [--clips 2] [--quick]

Held-out procedural clips (uavrt.tools.scenes, seeds >= HELD_OUT_SEED, never trained on) are
downscaled x4 and upscaled through the public API (`Upscaler.demo(...).with_config(...).stream`);
each setting is compared with the ground truth: PSNR and SSIM (luma) per frame, averaged, and
the warping error (uavrt.bench.quality.warping_error: MSE over non-occluded pixels between
output frame t+1 and output frame t warped by the INPUT's DIS optical flow, computed on the
bicubic x4 input; lower is steadier). The reference rows give bicubic x4 and the ground truth
itself through the same measures. Figures are for the ~1 M-parameter demo model trained for
minutes on synthetic video: they show what each approximation costs relative to the others,
not what the release model achieves.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from uavrt.bench.quality import psnr, ssim, warping_error
from uavrt.config import DecodeConfig, RunConfig, SamplerConfig, TileConfig, WindowConfig
from uavrt.runtime.upscaler import Upscaler
from uavrt.tools.scenes import HELD_OUT_SEED, bicubic_x4, downscale_x4, scene_clip

BASE = RunConfig(sampler=SamplerConfig(steps=20))  # release defaults otherwise (guidance 6, level 120)


def settings(quick: bool):
    s = BASE.sampler
    short = [
        ("steps", "30", replace(BASE, sampler=replace(s, steps=30))),
        ("steps", "20 (base)", BASE),
        ("steps", "10", replace(BASE, sampler=replace(s, steps=10))),
        ("tiling", "untiled (base)", BASE),
        ("tiling", "blend, tile 16 overlap 4", replace(BASE, tiles=TileConfig(size=16, overlap=4))),
        ("tiling", "release, tile 16 overlap 4", replace(BASE, tiles=TileConfig(size=16, overlap=4, mode="release"))),
        ("propagation", "off (base, 128x128 clip)", BASE),
        ("propagation", "steps 0-9 (untrained RAFT)", replace(BASE, sampler=replace(s, propagation_steps=tuple(range(10))))),
        ("propagation", "steps 0-9, OpenCV DIS flows in RAFT's place",
         replace(BASE, sampler=replace(s, propagation_steps=tuple(range(10))))),
        ("colour fix", "none (base)", BASE),
        ("colour fix", "wavelet", replace(BASE, decode=DecodeConfig(color_fix="wavelet"))),
        ("colour fix", "adain", replace(BASE, decode=DecodeConfig(color_fix="adain"))),
    ]
    long = [("window", f"{w}{' (default)' if w == 32 else ''}", replace(BASE, window=WindowConfig(frames=w, overlap=4)))
            for w in (16, 32, 64)]
    if quick:  # steps and tiling only
        short, long = [r for r in short if r[0] in ("steps", "tiling")], []
    return short, long


def clips(n, frames, h, w, first):
    out = []
    for k in range(n):
        rng = np.random.default_rng(k)
        pan = tuple(int(v) for v in rng.choice([-3, -2, 2, 3], 2))
        hr = scene_clip(HELD_OUT_SEED + first + k, frames, h, w, pan=pan)
        out.append(((hr * 255).astype(np.float64), downscale_x4(hr)))
    return out


class DisFlows:
    """OpenCV DIS optical flow behind the RAFT runner's interface (this benchmark only). The demo's
    RAFT is untrained: its flows are tens of pixels off (mean 38 px on a 0.5 px pan) and the
    propagation row equals "off" to every digit shown; with DIS flows the row shows what
    propagating along real flows does to this model's output."""

    def __call__(self, image1, image2):
        import torch
        from uavrt.bench.quality import dis_flow

        def hwc(x):  # [3, H, W] in [-1, 1] -> [H, W, 3] in 0..255
            return ((x.float() + 1) * 127.5).clamp(0, 255).permute(1, 2, 0).numpy()
        flows = [torch.from_numpy(dis_flow(hwc(a), hwc(b))).permute(2, 0, 1) for a, b in zip(image1, image2)]
        return {"flow_up": torch.stack(flows).float()}

    def close(self):
        pass


def measure(video, gt, lr):
    return psnr(video, gt).mean(), ssim(video, gt).mean(), warping_error(video, bicubic_x4(lr))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default=str(Path(__file__).parent / "results"))
    p.add_argument("--clips", type=int, default=2)
    p.add_argument("--quick", action="store_true", help="steps and tiling only")
    p.add_argument("--groups", default=None, help="comma-separated groups to (re)measure; the other rows "
                   "are kept from the existing quality_demo_<machine>.json")
    a = p.parse_args(argv)
    short_rows, long_rows = settings(a.quick)
    if a.groups:
        keep = set(a.groups.split(","))
        short_rows = [r for r in short_rows if r[0] in keep]
        long_rows = [r for r in long_rows if r[0] in keep]
    short = clips(a.clips, 8, 64, 96, 100)  # 8 frames of 16x24 low-res
    long = clips(1, 80, 32, 48, 200)  # 80 frames of 8x12: windows of 16/32/64 differ
    # RAFT needs >= 121 px low-res frames: the propagation rows get their own 8 frames of 128x128
    wide = clips(1, 8, 512, 512, 300) if any(r[0] == "propagation" for r in short_rows) else []
    needs_raft = any(cfg.sampler.propagation_steps for _, _, cfg in short_rows)
    up = Upscaler.demo(replace(BASE, sampler=replace(BASE.sampler, propagation_steps=(0,))) if needs_raft else BASE)
    dis = Upscaler(dataclasses.replace(up.model, raft=DisFlows()), BASE) if needs_raft else None
    rows, cache = [], {}
    t0 = time.time()
    for group, name, cfg in short_rows + long_rows:
        clip_set = {"window": "long", "propagation": "wide"}.get(group, "short")
        data = {"long": long, "wide": wide, "short": short}[clip_set]
        key = (repr(cfg), clip_set, "DIS" in name)  # a base row shared by groups runs once per clip set
        if key not in cache:
            runner = (dis if "DIS" in name else up).with_config(cfg)
            ms = []
            t = time.time()
            for gt, lr in data:
                out = np.stack(list(runner.stream(iter(list(lr))))).astype(np.float64)
                ms.append(measure(out, gt, lr))
            cache[key] = (np.mean(ms, axis=0), time.time() - t)
            print(f"{group:12s} {name:30s} psnr {cache[key][0][0]:.2f} ssim {cache[key][0][1]:.3f} "
                  f"warp {cache[key][0][2]:.1f}  ({cache[key][1]:.0f} s)", flush=True)
        rows.append((group, name, *cache[key][0]))
    refs = []
    for label, data in (("8-frame clips", short), ("80-frame clip", long), ("128x128 clip", wide)):
        if not data:
            continue
        bic = np.mean([measure(bicubic_x4(lr), gt, lr) for gt, lr in data], axis=0)
        truth = np.mean([measure(gt, gt, lr) for gt, lr in data], axis=0)
        refs += [(f"reference ({label})", "bicubic x4", *bic), (f"reference ({label})", "ground truth", *truth)]
    write(a.out, rows, refs, a, time.time() - t0)


def write(out_dir, rows, refs, a, seconds):
    from uavrt.bench.env import environment, machine_name, machine_tag
    env = environment()
    out = Path(out_dir) / f"quality_demo_{machine_tag(env)}.md"
    raw = out.with_suffix(".json")
    runs = json.loads(raw.read_text())["runs"] if (a.groups and raw.exists()) else []
    runs.append({"argv": sys.argv[1:], "machine": machine_name(env), "load_avg_1m": env["load_avg_1m"],
                 "minutes": round(seconds / 60, 1), "rows": [list(r) for r in rows]})
    # the newest measurement of each (group, setting) wins, in the table's order
    order = [(g, n) for g, n, _ in sum(settings(False), [])]
    latest = {(r[0], r[1]): tuple(r) for run in runs for r in run["rows"]}
    rows = [latest[k] for k in order if k in latest]
    raw.parent.mkdir(parents=True, exist_ok=True)
    tmp = raw.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({"runs": runs}, indent=1))
    tmp.replace(raw)
    lines = [
        "# Quality of the tiny trained demo model (NOT the release model)",
        "",
        "`python benchmarks/quality.py` on " + machine_name(env) + "; every run (command, load, minutes) is in",
        f"`{raw.name}`, and each row is the newest measurement of its setting.",
        "The model is the ~1 M-parameter demo (uavrt/models/demo_trained, trained for minutes on",
        "synthetic video by `python -m uavrt.tools.train_demo`); its RAFT is untrained (random): the",
        "flows are tens of pixels off and that row equals \"off\" to every digit shown; the DIS row",
        "propagates along OpenCV DIS flows instead (a benchmark stand-in). These figures compare the runtime's",
        "settings with each other on this model; they say nothing about the release model's quality.",
        "",
        f"Held-out procedural clips (seeds >= HELD_OUT_SEED): {a.clips} clips of 8 frames at 16x24 low-res",
        "(-> 64x96), one of 80 frames at 8x12 low-res for the window rows, and one of 8 frames at 128x128",
        "low-res for the propagation rows (RAFT needs >= 121 px; its own base row). Base setting: 20 DDIM",
        "steps, guidance 6, noise level 120, no tiling, window 32/overlap 4, no propagation, no colour fix.",
        "PSNR/SSIM (luma, 11x11 Gaussian) against the ground truth, mean over frames and clips. Warping",
        "error: MSE (0..255 levels, squared) over non-occluded pixels between output frame t+1 and frame t",
        "warped by the input's flow (OpenCV DIS, medium preset, on the bicubic x4 input; forward-backward",
        "occlusion check); lower is steadier; the ground truth's own value is the floor.",
        "",
        "| group | setting | PSNR dB | SSIM | warping error |",
        "|---|---|---|---|---|",
    ]
    for g, n, p_, s_, w in rows + refs:
        lines.append(f"| {g} | {n} | {p_:.2f} | {s_:.3f} | {w:.1f} |")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    sys.exit(main())
