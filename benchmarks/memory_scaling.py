"""Memory benchmark (issue 3): peak RSS of `uavrt upscale --demo` on a short and a 4x longer video.

Each run is a SUBPROCESS; its peak RSS comes from the kernel (os.wait4's rusage of exactly that
child: ru_maxrss) and is cross-checked by polling the child's RSS with psutil. Requirement:
peak(400 frames) <= 1.15 x peak(100 frames): the runtime streams the video in temporal windows
(uavrt/runtime/stream.py), so nothing should grow with the video's length.

Sensitivity: a leak only shows when it exceeds 15% of the short run's peak; the report states
that margin in MB and per extra frame, next to the size of one output frame, so a passing ratio
is read for what it proves.

    python benchmarks/memory_scaling.py [--frames 100,400] [--size 32x32] [--steps 2] [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

LIMIT = 1.15


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--frames", default="100,400", help="two lengths: short,long")
    p.add_argument("--size", default="32x32", help="input WxH (low-res); the output is 4x")
    p.add_argument("--steps", type=int, default=2)
    p.add_argument("--guidance", default="6", help="6 = release (U-Net batch 2); 1 = no guidance, faster")
    p.add_argument("--extra", default="", help="more `uavrt upscale` flags, e.g. '--window 16'")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results"), help="results folder")
    p.add_argument("--poll-s", type=float, default=0.02)
    return p.parse_args(argv)


def run_child(cmd: list, env: dict, poll_s: float) -> dict:
    """Run `cmd`; peak RSS from the kernel (wait4) and from polling (psutil), and wall time."""
    import psutil
    t0 = time.perf_counter()
    child = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    proc = psutil.Process(child.pid)
    polled = 0
    while True:
        try:
            polled = max(polled, proc.memory_info().rss + sum(c.memory_info().rss for c in proc.children(True)))
        except psutil.Error:
            pass
        pid, status, usage = os.wait4(child.pid, os.WNOHANG)
        if pid:
            break
        time.sleep(poll_s)
    child.returncode = os.waitstatus_to_exitcode(status)  # reaped here: tell Popen
    output = child.stdout.read().decode(errors="replace")
    child.stdout.close()
    if child.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({child.returncode}):\n{output[-3000:]}")
    return {"wall_s": time.perf_counter() - t0, "peak_rss_mb": usage.ru_maxrss / 1024,
            "peak_rss_mb_polled": polled / 2**20}


def main(argv=None) -> int:
    a = parse_args(argv)
    from uavrt.bench.env import environment, machine_name, machine_tag
    from uavrt.bench.scenario import parse_size
    from uavrt.models.demo import demo_weights_dir
    from uavrt.runtime.video.synth import write_test_video

    short, long_ = (int(x) for x in a.frames.split(","))
    h, w = parse_size(a.size)
    demo_weights_dir(0, with_raft=False)  # written now, so no child pays for building the demo model
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    machine = environment("cpu")
    runs = {}
    with tempfile.TemporaryDirectory(prefix="uavrt-mem-") as tmp:
        for n in (short, long_):
            src = Path(tmp) / f"in_{n}.mp4"
            write_test_video(src, frames=n, width=w, height=h, codec="libx264", pix_fmt="yuv420p")
            cmd = [sys.executable, "-m", "uavrt", "upscale", str(src), "-o", str(Path(tmp) / f"out_{n}.mp4"), "--demo",
                   "--steps", str(a.steps), "-g", a.guidance, "-q", "--overwrite", *a.extra.split()]
            print(f"running {n} frames: {' '.join(cmd[1:])}", flush=True)
            runs[n] = run_child(cmd, env, a.poll_s)
            runs[n]["frames"] = n
            print(f"  peak RSS {runs[n]['peak_rss_mb']:.1f} MB (polled {runs[n]['peak_rss_mb_polled']:.1f}), "
                  f"{runs[n]['wall_s']:.1f} s", flush=True)
    ratio = runs[long_]["peak_rss_mb"] / runs[short]["peak_rss_mb"]
    margin_mb = (LIMIT - 1) * runs[short]["peak_rss_mb"]
    frame_mb = (4 * h) * (4 * w) * 3 * 4 / 2**20  # one output frame as float32 (the runtime's working type)
    result = {
        "benchmark": "memory_scaling", "machine": machine_name(machine), "env": machine,
        "command": f"uavrt upscale --demo --steps {a.steps} -g {a.guidance} {a.extra}".strip(),
        "input": f"{w}x{h} libx264, {short} and {long_} frames", "runs": [runs[short], runs[long_]],
        "ratio": ratio, "limit": LIMIT, "passed": ratio <= LIMIT,
        "delta_mb": runs[long_]["peak_rss_mb"] - runs[short]["peak_rss_mb"],
        "sensitivity": {"margin_mb": margin_mb, "margin_mb_per_extra_frame": margin_mb / (long_ - short),
                        "output_frame_float32_mb": frame_mb},
    }
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"memory_scaling_{machine_tag(machine)}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
    md = [f"# Memory scaling (issue 3): `{result['command']}`", "", f"Machine: {result['machine']}",
          f"Input: {result['input']} (synthetic pattern); demo model (tiny, random weights)", "",
          "| frames | peak RSS MB (wait4) | peak RSS MB (polled) | wall s |", "|---|---|---|---|"]
    md += [f"| {r['frames']} | {r['peak_rss_mb']:.1f} | {r['peak_rss_mb_polled']:.1f} | {r['wall_s']:.1f} |"
           for r in result["runs"]]
    md += ["", f"Ratio {long_}/{short} frames: **{ratio:.3f}** (limit {LIMIT}): {'PASS' if result['passed'] else 'FAIL'}; "
               f"delta {result['delta_mb']:+.1f} MB.",
           f"Sensitivity: the limit allows {margin_mb:.0f} MB of growth, {margin_mb / (long_ - short) * 1024:.0f} KB per "
           f"extra frame; one output frame is {frame_mb * 1024:.0f} KB as float32, so keeping every output frame "
           f"would add {frame_mb * (long_ - short):.0f} MB."]
    stem.with_suffix(".md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    print(f"wrote {stem}.json and {stem}.md")
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
