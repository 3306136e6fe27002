"""`uavrt bench`: flags -> scenarios -> measurements -> JSON lines, Markdown table, chart.

    uavrt bench --demo --backends torch,onnxruntime --frames 16 --json out.jsonl --plot out.png
    uavrt bench --random-weights --device cuda --precision fp16 --size 64x64,128x128 --steps 30
    uavrt bench --demo --scaling --scaling-frames 8,16,32,64 --scaling-sizes 16x16,32x32,64x64

Models: --demo (tiny, random), --random-weights (the release architecture with seeded random
weights: real cost, no download; every report says so) or --weights DIR (release weights).
List flags (--size, --frames, --steps, --guidance, --propagation, --tile, --precision) take
comma-separated values; every combination is one scenario, run on every backend.
"""

from __future__ import annotations

import argparse
import gc
import sys

from ..errors import BackendUnavailable, ConfigError, UavrtError
from .common import unet_batch_arg


def _list(text: str) -> list:
    return [x for x in text.replace(" ", "").split(",") if x]


def _ints(param: str, text: str) -> list:
    try:
        return [int(x) for x in _list(text)]
    except ValueError:
        raise ConfigError(param, text, "comma-separated integers, e.g. 8,16")


def add_parser(sub):
    b = sub.add_parser("bench", help="benchmarks: throughput, per-stage latency, memory, efficiency")
    add_bench_args(b)
    b.set_defaults(func=run_bench)


def add_bench_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model (exactly one)")
    g.add_argument("--demo", action="store_true", help="tiny seeded demo model")
    g.add_argument("--random-weights", action="store_true",
                   help="release architecture, seeded random weights (written once to the uavrt cache)")
    g.add_argument("--weights", help="release weights folder")
    g.add_argument("--model-seed", type=int, default=0, help="seed of the demo/random weights")
    g = p.add_argument_group("backends")
    g.add_argument("--backends", default="torch", help="comma-separated: torch,onnxruntime,tensorrt (first = baseline)")
    g.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N")
    g.add_argument("--precision", "--dtype", dest="precision", default="fp32", help="fp32,fp16 (list)")
    g.add_argument("--engines", help="folder of exported ONNX graphs / TensorRT engines")
    g = p.add_argument_group("scenarios (lists: every combination runs)")
    g.add_argument("--size", default="32x32", help="low-res input WxH, e.g. 32x32,64x48")
    g.add_argument("--frames", default="16", help="input frames, e.g. 16,64")
    g.add_argument("--steps", default="2", help="denoising steps, e.g. 2,30")
    g.add_argument("--guidance", default="6", help="guidance scales; <= 1 turns guidance off (e.g. 6,1)")
    g.add_argument("--propagation", default="off",
                   help="off | on (steps N-6,N-4,N-2 as the release's 24,26,28 of 30) | both")
    g.add_argument("--propagation-steps", help="explicit steps when propagation is on, e.g. 24,26,28")
    g.add_argument("--tile", default="auto", help="tile sizes in low-res px, or auto (release rule), e.g. auto,64")
    g.add_argument("--window", type=int, default=32)
    g.add_argument("--window-overlap", type=int, default=4)
    g.add_argument("--vae", default="3d", help="3d | video")
    g.add_argument("--propagator", default="torch", help="torch | kernel")
    g.add_argument("--io", default="file", help="file (decode + encode a video) | memory (frames in RAM)")
    g.add_argument("--codec", default="libx264", help="output encoder with --io file")
    g.add_argument("--seed", type=int, default=10)
    g.add_argument("--unet-batch", type=unet_batch_arg, default=1,
                   help="(tile, clip) pieces per U-Net call, or auto (memory budget); 1 = release-shaped")
    g = p.add_argument_group("measurement")
    g.add_argument("--reps", type=int, default=3, help="measured runs per scenario (median, min, max)")
    g.add_argument("--warmup", type=int, default=1, help="runs excluded before measuring")
    g.add_argument("--threads", type=int, help="torch CPU threads (1: steady timings on a shared machine)")
    g.add_argument("--peak-tflops", type=float, help="device peak for MFU (default: GPU table; none on CPU)")
    g.add_argument("--no-flops", action="store_true", help="skip the U-Net FLOP count")
    g.add_argument("--scaling", action="store_true", help="scaling run: time/memory vs length and vs resolution")
    g.add_argument("--scaling-frames", default="8,16,32,64")
    g.add_argument("--scaling-sizes", default="16x16,32x32,64x64")
    g = p.add_argument_group("output")
    g.add_argument("--json", help="write JSON lines here (one per scenario and backend)")
    g.add_argument("--markdown", help="also write the Markdown table here")
    g.add_argument("--plot", help="write a PNG chart (per-stage time stacked per backend)")
    g.add_argument("-q", "--quiet", action="store_true", help="no progress lines on stderr")


def _source(a):
    from ..bench.measure import ModelSource
    chosen = [k for k, on in (("demo", a.demo), ("random", a.random_weights), ("weights", bool(a.weights))) if on]
    if len(chosen) != 1:
        raise ConfigError("--demo/--random-weights/--weights", chosen or None, "exactly one of them")
    return ModelSource(chosen[0], a.weights, a.model_seed)


def scenarios_from_args(a) -> list:
    """[(sweep or None, Scenario)] from the flags."""
    from ..bench.scaling import scaling_scenarios
    from ..bench.scenario import grid, parse_size
    prop = _list(a.propagation)
    for v in prop:
        if v not in ("off", "on", "both"):
            raise ConfigError("--propagation", a.propagation, "off, on or both")
    prop = ["off", "on"] if "both" in prop else prop
    if a.propagation_steps:
        prop = [tuple(_ints("--propagation-steps", a.propagation_steps)) if v == "on" else v for v in prop]
    tiles = [None if t == "auto" else int(t) if t.isdigit() else t for t in _list(a.tile)]
    for t in tiles:
        if t is not None and not isinstance(t, int):
            raise ConfigError("--tile", a.tile, "auto or integers (low-res pixels)")
    try:
        guidance = [float(x) for x in _list(a.guidance)]
    except ValueError:
        raise ConfigError("--guidance", a.guidance, "comma-separated numbers, e.g. 6,1")
    fixed = dict(window=a.window, window_overlap=a.window_overlap, vae=a.vae, propagator=a.propagator, io=a.io,
                 codec=a.codec, seed=a.seed, unet_batch=a.unet_batch)
    scen = grid(sizes=[parse_size(s) for s in _list(a.size)], frames=_ints("--frames", a.frames),
                steps=_ints("--steps", a.steps), guidance=guidance, propagation=prop, tiles=tiles,
                precisions=_list(a.precision), **fixed)
    if not a.scaling:
        return [(None, s) for s in scen]
    return scaling_scenarios(scen[0], _ints("--scaling-frames", a.scaling_frames),
                             [parse_size(s) for s in _list(a.scaling_sizes)])


def _log(a, msg):
    if not a.quiet:
        print(f"uavrt bench: {msg}", file=sys.stderr, flush=True)


def run_backend(a, backend: str, scenarios: list, source, env: dict, inputs) -> list:
    """Every scenario on one backend (one load per precision/VAE); unavailable -> one error line."""
    from ..bench.flops import UNetFlops
    from ..bench.measure import load_upscaler, measure
    from ..models.release import network_config
    results = []
    groups: dict = {}
    for i, (sweep, s) in enumerate(scenarios):
        groups.setdefault((s.precision, s.vae), []).append((i, sweep, s))
    with_raft = any(s.propagation_steps for _, s in scenarios)  # one load serves every scenario
    for (precision, vae), group in groups.items():
        _log(a, f"loading {source.kind} model on {backend} {a.device} {precision} (vae_{vae})")
        try:
            up, load_s = load_upscaler(source, backend, a.device, precision, vae, with_raft, a.engines)
        except BackendUnavailable as e:
            _log(a, f"SKIPPED backend {backend}: {e}")
            return results + [{"backend": backend, "status": "unavailable", "error": str(e), "precision": precision,
                               "env": env, "model": source.describe()}]
        flops = None if a.no_flops else UNetFlops(network_config(up.info["weights"], "unet"))
        for index, sweep, s in group:
            _log(a, f"{backend} {precision}: {s.label()} ({a.warmup} warm-up + {a.reps} runs)")
            try:
                r = measure(up, s, backend=backend, inputs=inputs, reps=a.reps, warmup=a.warmup, unet_flops=flops,
                            peak_tflops=a.peak_tflops)
            except UavrtError as e:  # e.g. an engine built for other shapes: report it, go on
                _log(a, f"FAILED {backend} {s.label()}: {e}")
                results.append({"backend": backend, "status": "error", "error": str(e), "precision": precision,
                                "scenario": s.to_json(), "label": s.label(), "env": env, "model": source.describe()})
                continue
            r.update(env=env, model=dict(source.describe(), weights_dir=up.info["weights"]), load_s=load_s,
                     vs_first=None, scenario_id=index)
            if sweep:
                r["sweep"] = sweep
            results.append(r)
            _log(a, f"  wall {r['wall_s']['median_s']:.2f} s, {r['fps']:.2f} fps")
        del up
        gc.collect()
    return results


def run_bench(a) -> int:
    from ..bench.env import environment, machine_name
    from ..bench.measure import InputVideos
    from ..bench.report import add_ratios, markdown_table, plot, write_jsonl
    from ..config import BACKENDS
    source = _source(a)
    backends = _list(a.backends)
    for b in backends:
        if b not in BACKENDS:
            raise ConfigError("--backends", a.backends, "a comma-separated list of " + ", ".join(BACKENDS))
    if a.reps < 1 or a.warmup < 0:
        raise ConfigError("--reps/--warmup", (a.reps, a.warmup), "reps >= 1 and warmup >= 0")
    if a.threads is not None and not 1 <= a.threads <= 1024:
        raise ConfigError("--threads", a.threads, "a thread count in [1, 1024] (leave it out for torch's default)")
    from ..config import check_device
    from ..fsutil import check_output_location
    check_device(a.device)
    for flag in ("json", "markdown", "plot"):  # before the benchmark, not after it
        if getattr(a, flag):
            check_output_location(getattr(a, flag), f"--{flag}")
    scenarios = scenarios_from_args(a)
    if a.threads:
        import torch
        torch.set_num_threads(a.threads)  # recorded in env["torch_threads"]
    env = environment(a.device)
    inputs = InputVideos()
    results = []
    try:
        for b in backends:
            results += run_backend(a, b, scenarios, source, env, inputs)
            if a.device.startswith("cuda"):
                import torch
                torch.cuda.empty_cache()
    finally:
        inputs.close()
    # scenario by scenario, backends in the order asked; unavailable backends last
    results.sort(key=lambda r: (r.get("scenario_id", len(scenarios)), backends.index(r["backend"])))
    add_ratios(results, backends)
    table = markdown_table(results, machine_name(env), source.describe()["note"])
    if a.scaling:
        from ..bench.scaling import scaling_markdown, summarize
        summary = summarize(results)
        table += "\n\nScaling (least-squares fits):\n\n" + scaling_markdown(summary)
    print(table)
    if a.json:
        write_jsonl(results, a.json)
        _log(a, f"wrote {a.json}")
        if a.scaling:
            import json
            from pathlib import Path
            side = Path(a.json).with_suffix(".scaling.json")
            side.write_text(json.dumps(summary, indent=1) + "\n")
            _log(a, f"wrote {side}")
    if a.markdown:
        from pathlib import Path
        Path(a.markdown).write_text(table + "\n")
        _log(a, f"wrote {a.markdown}")
    ran = [r for r in results if r.get("status") == "ok"]
    if a.plot and ran:
        plot(results, a.plot)
        _log(a, f"wrote {a.plot}")
    if not ran:
        print("uavrt bench: no backend could run (see the SKIPPED lines)", file=sys.stderr)
        return 3
    return 0


def main(argv=None) -> int:
    """`python -m uavrt.commands.bench` without the top-level CLI."""
    p = argparse.ArgumentParser(prog="uavrt bench", description=__doc__.split("\n")[0])
    add_bench_args(p)
    a = p.parse_args(argv)
    try:
        return run_bench(a)
    except ConfigError as e:
        print(f"uavrt bench: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
