"""Throughput benchmark (issue 15): per network and end to end, uavrt vs release-shaped paths.

Every comparison is a ratio measured in ONE run with interleaved repeats (A B A B ...), so a
shared machine's load hits both sides alike; medians and min/max are reported, with wall time
and process CPU time (user+sys of all threads: on a machine shared with other jobs it is the
steadier measure of work done; compare at --threads 1 where OpenMP barriers cannot spin).
Release network configs (uavrt/models/configs/*.json), seeded random weights (speed does not
depend on the values), fp32.

Sections (--sections, comma-separated):
  vae      vae_3d / vae_video decode of --frames frames (3-frame chunks, the release's decode
           loop), 32x32 latents -> 128x128: the official implementation (--official DIR, a
           checkout of sczhou/Upscale-A-Video plus its deps on --official-path) vs uavrt.
           Outputs are compared too (max abs difference).
  unet     one step's U-Net work for K clips (batch 2 each, guidance): K calls (release-shaped)
           vs one call of batch 2K (batched) [vs torch.compile], 32x32 / 64x64 latents;
           FLOPs by torch's counter (uavrt.bench.flops), achieved TFLOP/s.
  ort      ONNX Runtime CPU session options (threads x graph optimisation x memory arena) per
           network, against torch eager.
  e2e      the pipeline on a synthetic window: release-equivalent (unbatched clips) vs batched,
           after a one-step warm-up of each; per round: time in U-Net calls, VAE calls, the rest,
           and the U-Net's achieved TFLOP/s.
  peak     fp32 sgemm 2048 (MKL): the ceiling the achieved TFLOP/s are compared with.
  profile  one release-shaped U-Net call (batch 2) under torch.profiler: the top operators.

    python benchmarks/throughput.py --sections vae --official /tmp/uav --official-path SITE
    python benchmarks/throughput.py --sections unet --latents 32 --clips 2 --repeats 3

Results: benchmarks/results/throughput_<machine>.json (appended per section) and a Markdown
table on stdout (the .md file is written by hand from these).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
VAE_CHUNK = 3  # the release decodes 3 frames per VAE call


# --- timing ----------------------------------------------------------------------------------

def _clock(fn):
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w, time.process_time() - c


def interleaved(variants: dict, repeats: int, warmup: int = 1, log=print) -> dict:
    """variants: name -> zero-arg callable. Runs warm-up, then `repeats` rounds of every variant
    in turn; returns name -> {wall: [...], cpu: [...]}."""
    for name, fn in variants.items():
        for _ in range(warmup):
            fn()
    times = {n: {"wall": [], "cpu": []} for n in variants}
    for r in range(repeats):
        for name, fn in variants.items():
            _, w, c = _clock(fn)
            times[name]["wall"].append(w)
            times[name]["cpu"].append(c)
            log(f"  round {r}: {name:24s} wall {w:8.2f}s cpu {c:8.2f}s")
    return times


def summary(ts: list) -> dict:
    return {"median": statistics.median(ts), "min": min(ts), "max": max(ts), "n": len(ts)}


def ratios(times: dict, base: str) -> dict:
    """base time / variant time per variant (> 1: the variant is faster), by the medians."""
    out = {}
    for name, t in times.items():
        out[name] = {k: statistics.median(times[base][k]) / statistics.median(t[k]) for k in ("wall", "cpu")}
    return out


def peak_rss_mb() -> float:
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- networks --------------------------------------------------------------------------------

def packaged(name: str) -> dict:
    from uavrt.models.release import packaged_config
    return packaged_config(name)


def _official_vae(config: dict):
    from models_video.autoencoder_kl_cond_video import AutoencoderKLVideo  # the release's class
    return AutoencoderKLVideo.from_config({k: v for k, v in config.items() if not k.startswith("_")}).eval()


def bench_vae(args, log=print) -> list:
    from uavrt.models.vae import VideoVAEDecoder, decoder_state_dict

    rows = []
    for name in args.vaes.split(","):
        config = packaged(name)
        torch.manual_seed(0)
        ours = VideoVAEDecoder.from_config(config).eval()
        sd = ours.state_dict()
        if name == "vae_video":  # the release zero-inits conv_3d: random values exercise it
            g = torch.Generator().manual_seed(1)
            sd = {k: (torch.randn(v.shape, generator=g) * 0.02 if "conv_3d" in k else v) for k, v in sd.items()}
            ours.load_state_dict(sd)
        T, s = args.frames, 32
        g = torch.Generator().manual_seed(2)
        z = torch.randn(1, 4, T, s, s, generator=g) * 2.4  # latents / scaling factor, ~unit-ish std
        lr = torch.rand(1, 3, T, s, s, generator=g) * 2 - 1
        chunks = [(a, min(a + VAE_CHUNK, T)) for a in range(0, T, VAE_CHUNK)]
        cond = bool(config.get("condition_img"))

        def run_ours():
            kw = lambda a, b: {"low_res": lr[:, :, a:b]} if cond else {}  # noqa: E731
            return torch.cat([ours(z[:, :, a:b], **kw(a, b)) for a, b in chunks], 2)

        variants = {"uavrt": run_ours}
        if args.vae_batch:  # equal-length chunks stacked on the batch axis (GroupNorm is per sample)
            def run_batched():
                groups: dict = {}
                for a, b in chunks:
                    groups.setdefault(b - a, []).append((a, b))
                parts = {}
                for size, cs in groups.items():
                    zb = torch.cat([z[:, :, a:b] for a, b in cs])
                    kw = {"low_res": torch.cat([lr[:, :, a:b] for a, b in cs])} if cond else {}
                    y = ours(zb, **kw)
                    parts.update({c: y[i:i + 1] for i, c in enumerate(cs)})
                return torch.cat([parts[c] for c in chunks], 2)
            variants["uavrt, equal chunks in one call"] = run_batched
        if args.official:
            off = _official_vae(config)
            missing = off.load_state_dict(decoder_state_dict(sd) | {k: v for k, v in off.state_dict().items()
                                                                    if k.startswith(("encoder.", "quant_conv."))})
            assert not missing.missing_keys and not missing.unexpected_keys, missing

            def run_official():  # the release's decode loop (pipeline_upscale_a_video.py)
                return torch.cat([off.decode(z[:, :, a:b], lr[:, :, a:b], 1.0).sample for a, b in chunks], 2)

            variants = {"official": run_official, **variants}
        if args.previous:  # an older uavrt, importable under another package name
            import importlib
            old = importlib.import_module(args.previous).VideoVAEDecoder.from_config(config).eval()
            old.load_state_dict(sd)
            variants["uavrt-previous"] = lambda: torch.cat(
                [old(z[:, :, a:b], **({"low_res": lr[:, :, a:b]} if cond else {})) for a, b in chunks], 2)
        with torch.inference_mode():
            outs = {n: fn() for n, fn in variants.items()}
            diff = (outs["official"] - outs["uavrt"]).abs().max().item() if "official" in outs else None
            bdiff = (outs["uavrt, equal chunks in one call"] - outs["uavrt"]).abs().max().item() \
                if args.vae_batch else None
            log(f"{name}: {T} frames, chunks {chunks}, max |official - uavrt| = {diff}, "
                f"max |batched chunks - uavrt| = {bdiff}")
            times = interleaved(variants, args.repeats, warmup=0, log=log)
        base = "official" if "official" in variants else "uavrt"
        r = ratios(times, base)
        for n in variants:
            rows.append({"section": "vae", "network": name, "variant": n, "frames": T, "latent": f"{s}x{s}",
                         "threads": torch.get_num_threads(), "wall_s": summary(times[n]["wall"]),
                         "cpu_s": summary(times[n]["cpu"]), f"{base}_over_variant": r[n],
                         "max_abs_diff_vs_official": diff, "max_abs_diff_batched_chunks": bdiff})
    return rows


def bench_unet(args, log=print) -> list:
    from uavrt.bench.flops import UNetFlops
    from uavrt.models.release import build_network
    from uavrt.runtime.torch_backend import TorchBackend
    from uavrt.spec import UNET

    config = packaged("unet_video")
    torch.manual_seed(0)
    module = build_network("unet", config).eval()
    flops = UNetFlops(config)
    rows = []
    eager = TorchBackend("cpu", "fp32").from_module(UNET, module)
    compiled = TorchBackend("cpu", "fp32", compile=True).from_module(UNET, module) if args.compile else None
    for s in (int(x) for x in args.latents.split(",")):
        K, T = args.clips, 8
        g = torch.Generator().manual_seed(3)
        C = int(config["cross_attention_dim"])
        sample = torch.randn(2 * K, 4, T, s, s, generator=g)
        low_res = torch.randn(2 * K, 3, T, s, s, generator=g)
        ehs = torch.randn(2 * K, 77, C, generator=g)
        labels = torch.full((2 * K,), 120, dtype=torch.int64)
        t = torch.tensor(500, dtype=torch.int64)

        def call(runner, a, b):
            return runner(sample=sample[a:b], timestep=t, low_res=low_res[a:b], encoder_hidden_states=ehs[a:b],
                          class_labels=labels[a:b])["noise_pred"]

        variants = {"release-shaped (K calls of 2)": lambda: [call(eager, 2 * k, 2 * k + 2) for k in range(K)],
                    f"batched (1 call of {2 * K})": lambda: call(eager, 0, 2 * K)}
        if compiled is not None:
            variants[f"compiled batched ({2 * K})"] = lambda: call(compiled, 0, 2 * K)
        with torch.inference_mode():
            a = torch.cat(variants["release-shaped (K calls of 2)"]())
            b = variants[f"batched (1 call of {2 * K})"]()
            exact = bool(torch.equal(a, b))
            log(f"unet {s}x{s}: K={K} clips, batched == unbatched bit for bit: {exact} "
                f"(max abs {(a - b).abs().max().item():.3g})")
            times = interleaved(variants, args.repeats, warmup=1, log=log)
        total = flops.per_call(2 * K, T, s, s)
        r = ratios(times, "release-shaped (K calls of 2)")
        for n in variants:
            med = statistics.median(times[n]["wall"])
            rows.append({"section": "unet", "variant": n, "latent": f"{s}x{s}", "clips": K, "frames": T,
                         "threads": torch.get_num_threads(), "unet_calls_per_step": K if n.startswith("release") else 1,
                         "tflop_per_step": total / 1e12, "achieved_tflops": total / med / 1e12,
                         "wall_s": summary(times[n]["wall"]), "cpu_s": summary(times[n]["cpu"]),
                         "release_over_variant": r[n], "batched_equals_unbatched": exact})
    return rows


ORT_GRID = {"threads": (1, 2), "opt": ("basic", "extended", "all"), "arena": (True, False)}


def bench_ort(args, log=print) -> list:
    from uavrt.models.release import build_network
    from uavrt.config import OrtOptions
    from uavrt.runtime.ort_backend import OrtBackend
    from uavrt.runtime.torch_backend import TorchBackend
    from uavrt.spec import SPECS

    shapes = {"unet": {"B": 2, "T": 8, "H": 32, "W": 32, "L": 77}, "vae_3d": {"B": 1, "T": 3, "H": 32, "W": 32},
              "vae_video": {"B": 1, "T": 3, "H": 32, "W": 32}, "raft": {"N": 1, "H": 128, "W": 128}}
    files = {"unet": "unet_video", "vae_3d": "vae_3d", "vae_video": "vae_video", "raft": "raft_things"}
    rows = []
    for name in args.ort_networks.split(","):
        spec, config = SPECS[name], packaged(files[name])
        torch.manual_seed(0)
        module = build_network(name, config).eval()
        inputs = spec.sample_inputs(spec.example_dims(config, **shapes[name]), seed=0)
        variants = {"torch eager": (lambda r=TorchBackend().from_module(spec, module): r(**inputs))}
        ref = variants["torch eager"]()
        base = OrtBackend()
        path = base.from_module(spec, module)  # one export, reused by every session below
        for th in ORT_GRID["threads"]:
            for opt in ORT_GRID["opt"]:
                for arena in ORT_GRID["arena"]:
                    if args.ort_quick and (opt, arena) not in (("all", True), ("extended", True), ("all", False)):
                        continue
                    runner = OrtBackend(options=OrtOptions(threads=th, graph_optimization=opt, memory_arena=arena)
                                        ).load(spec, path.source, keep_alive=path)
                    got = runner(**inputs)
                    err = max((got[k] - ref[k]).abs().max().item() for k in ref)
                    log(f"{name}: ort threads={th} opt={opt} arena={arena}: max abs vs torch {err:.3g}")
                    variants[f"ort t{th} {opt} arena={'on' if arena else 'off'}"] = (lambda r=runner: r(**inputs))
        times = interleaved(variants, args.repeats, warmup=1, log=log)
        r = ratios(times, "torch eager")
        for n in variants:
            rows.append({"section": "ort", "network": name, "variant": n, "shape": shapes[name],
                         "wall_s": summary(times[n]["wall"]), "cpu_s": summary(times[n]["cpu"]),
                         "torch_over_variant": r[n]})
    return rows


def bench_e2e(args, log=print) -> list:
    """One window through the pipeline (run_window: denoise + decode), release U-Net + vae_3d,
    random weights: release-equivalent (one U-Net call per clip) vs batched (all pieces of a step
    per call). Outputs are compared (max abs)."""
    from dataclasses import replace

    from uavrt.config import RunConfig, SamplerConfig
    from uavrt.models.demo import DDIM, LOW_RES  # the release's scheduler configs
    from uavrt.bench.clock import StageClock, TimedRunner
    from uavrt.bench.flops import UNetFlops
    from uavrt.models.release import build_network
    from uavrt.runtime import pipeline as pl
    from uavrt.runtime.model import Model
    from uavrt.runtime.plan import plan_window
    from uavrt.runtime.torch_backend import TorchBackend
    from uavrt.spec import UNET, VAE_3D

    ucfg, vcfg = packaged("unet_video"), packaged("vae_3d")
    torch.manual_seed(0)
    unet_net, vae_net = build_network("unet", ucfg), build_network("vae_3d", vcfg)

    def assemble(backend):
        return Model.assemble(unet=backend.from_module(UNET, unet_net), vae=backend.from_module(VAE_3D, vae_net),
                              raft=None, scheduler_config=DDIM, low_res_scheduler_config=LOW_RES, vae_config=vcfg,
                              device="cpu")
    model = assemble(TorchBackend("cpu", "fp32"))
    T, s = args.e2e_frames, args.e2e_latent
    g = torch.Generator().manual_seed(5)
    C = int(ucfg["cross_attention_dim"])
    cond = pl.Conditioning(torch.randn(1, 77, C, generator=g), torch.randn(1, 77, C, generator=g))
    low_res = torch.rand(1, 3, T, s, s, generator=g) * 2 - 1
    latents, lr_noise = torch.randn(1, 4, T, s, s, generator=g), torch.randn(1, 3, T, s, s, generator=g)
    base = RunConfig(sampler=SamplerConfig(steps=args.e2e_steps, guidance_scale=6.0))
    modes = {"release-equivalent": (model, replace(base, unet_batch=1)),
             "batched": (model, replace(base, unet_batch=64))}
    if args.compile:  # torch.compile (inductor) of the same U-Net and VAE modules
        modes["batched + compiled"] = (assemble(TorchBackend("cpu", "fp32", compile=True)), modes["batched"][1])
    plans = {n: plan_window(c, model.ddim, T, s, s, "cpu") for n, (_, c) in modes.items()}
    flops = UNetFlops(ucfg)
    results, times, parts = {}, {}, {}
    with torch.inference_mode():
        for name, (m, cfg) in modes.items():  # warm-up: one step of each (oneDNN primitives, allocator, compile)
            one = replace(cfg, sampler=replace(cfg.sampler, steps=1))
            t = time.perf_counter()
            pl.run_window(m, one, plan_window(one, m.ddim, T, s, s, "cpu"), cond, low_res, latents, lr_noise)
            log(f"  warm-up {name}: {time.perf_counter() - t:.1f}s")
        for r in range(args.repeats):  # interleaved by hand: each run is long
            for name, (m, cfg) in modes.items():
                # where the time goes: each network call timed (wall) inside the run
                clock = StageClock()
                timed = dataclasses.replace(m, unet=TimedRunner(m.unet, clock, "unet"),
                                            vae=TimedRunner(m.vae, clock, "vae"))
                out, w, c = _clock(lambda: pl.run_window(timed, cfg, plans[name], cond, low_res, latents, lr_noise))
                unet_s, vae_s = clock.seconds["unet"], clock.seconds["vae"]
                results.setdefault(name, out)
                times.setdefault(name, {"wall": [], "cpu": []})
                times[name]["wall"].append(w)
                times[name]["cpu"].append(c)
                unet_flop = sum(flops.per_call(*shape) for shape in clock.unet_shapes)
                parts.setdefault(name, []).append({"unet_s": unet_s, "unet_calls": clock.calls["unet"],
                                                   "vae_s": vae_s, "other_s": w - unet_s - vae_s,
                                                   "unet_tflops": unet_flop / unet_s / 1e12})
                log(f"  round {r}: {name:20s} wall {w:8.2f}s cpu {c:8.2f}s  unet {unet_s:7.2f}s "
                    f"({clock.calls['unet']} calls, {unet_flop / unet_s / 1e12:.3f} TFLOP/s)  vae {vae_s:6.2f}s")
    ref = results["release-equivalent"]
    r = ratios(times, "release-equivalent")
    return [{"section": "e2e", "variant": n, "frames": T, "latent": f"{s}x{s}", "steps": args.e2e_steps,
             "guidance": 6.0, "unet_calls_per_step": len(plans[n].calls),
             "wall_s": summary(times[n]["wall"]), "cpu_s": summary(times[n]["cpu"]), "breakdown": parts[n],
             "release_over_variant": r[n], "max_abs_diff_vs_release_equivalent": (results[n] - ref).abs().max().item()}
            for n in modes]


def bench_profile(args, log=print) -> list:
    """Where one release-shaped U-Net call (batch 2: [uncond, cond] of one 8-frame clip) spends
    its time, by operator (torch.profiler, self CPU time), at each of --latents."""
    from torch.profiler import ProfilerActivity, profile

    from uavrt.bench.flops import UNetFlops
    from uavrt.models.release import build_network
    from uavrt.runtime.torch_backend import TorchBackend
    from uavrt.spec import UNET

    config = packaged("unet_video")
    torch.manual_seed(0)
    runner = TorchBackend("cpu", "fp32").from_module(UNET, build_network("unet", config).eval())
    flops, rows = UNetFlops(config), []
    for s in (int(x) for x in args.latents.split(",")):
        kw = UNET.sample_inputs(UNET.example_dims(config, B=2, T=8, H=s, W=s, L=77), seed=0)
        with torch.inference_mode():
            runner(**kw)  # warm-up
            t = time.perf_counter()
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                runner(**kw)
            wall = time.perf_counter() - t
        events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
        total = sum(e.self_cpu_time_total for e in events)
        top = [{"op": e.key, "self_cpu_share": e.self_cpu_time_total / total, "calls": e.count} for e in events[:12]]
        for e in top:
            log(f"unet {s}x{s}: {e['op']:40s} {100 * e['self_cpu_share']:5.1f}%  ({e['calls']} calls)")
        rows.append({"section": "profile", "latent": f"{s}x{s}", "batch": 2, "frames": 8,
                     "threads": torch.get_num_threads(), "wall_s_profiled": wall,
                     "achieved_tflops": flops.per_call(2, 8, s, s) / wall / 1e12, "top_ops": top})
    return rows


def bench_peak(args, log=print) -> list:
    """What this CPU sustains on the friendliest work: fp32 matrix products (MKL), the ceiling
    the U-Net's achieved TFLOP/s is compared with."""
    n, rows = 2048, []
    a, b = torch.randn(n, n), torch.randn(n, n)
    times = interleaved({"sgemm 2048": lambda: a @ b}, max(args.repeats, 5), warmup=2, log=log)
    med = statistics.median(times["sgemm 2048"]["wall"])
    rows.append({"section": "peak", "variant": f"sgemm {n}", "threads": torch.get_num_threads(),
                 "wall_s": summary(times["sgemm 2048"]["wall"]), "tflops": 2 * n ** 3 / med / 1e12})
    log(f"sgemm {n}: {2 * n ** 3 / med / 1e12:.3f} TFLOP/s")
    return rows


SECTIONS = {"vae": bench_vae, "unet": bench_unet, "ort": bench_ort, "e2e": bench_e2e, "peak": bench_peak,
            "profile": bench_profile}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sections", default="vae,unet")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    p.add_argument("--frames", type=int, default=8, help="vae: frames decoded (3-frame chunks)")
    p.add_argument("--vaes", default="vae_3d,vae_video")
    p.add_argument("--official", default=None, help="vae: a checkout of sczhou/Upscale-A-Video")
    p.add_argument("--official-path", default=None,
                   help="vae: extra import path(s) for the official code's deps (os.pathsep-separated)")
    p.add_argument("--previous", default=None,
                   help="vae: module path of an older uavrt's vae package (e.g. uavrt_old.models.vae)")
    p.add_argument("--vae-batch", action="store_true", help="vae: add equal-length chunks in one call")
    p.add_argument("--latents", default="32,64")
    p.add_argument("--clips", type=int, default=2, help="unet: clips per step (batched into one call)")
    p.add_argument("--compile", action="store_true", help="unet, e2e: add a torch.compile variant")
    p.add_argument("--ort-networks", default="vae_3d,raft")
    p.add_argument("--ort-quick", action="store_true", help="ort: 3 option sets per thread count")
    p.add_argument("--e2e-frames", type=int, default=16)
    p.add_argument("--e2e-latent", type=int, default=64)
    p.add_argument("--e2e-steps", type=int, default=4)
    p.add_argument("--out", default=None, help="results JSON (default benchmarks/results/throughput_<machine>.json)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.official:
        sys.path[:0] = [*(args.official_path.split(os.pathsep) if args.official_path else []), args.official]
    from uavrt.bench.env import environment, machine_name, machine_tag
    env = environment("cpu")
    out = Path(args.out) if args.out else RESULTS / f"throughput_{machine_tag(env)}.json"
    results = json.loads(out.read_text()) if out.exists() else {"runs": []}
    for section in args.sections.split(","):
        t0 = time.time()
        rows = SECTIONS[section](args)
        results["runs"].append({"section": section, "machine": machine_name(env), "env": env,
                                "argv": sys.argv[1:], "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t0)),
                                "load_avg_1m_end": round(os.getloadavg()[0], 2), "peak_rss_mb": round(peak_rss_mb(), 1),
                                "rows": rows})
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(results, indent=1))
        tmp.replace(out)
        for row in rows:
            print(json.dumps(row))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
