"""Scaling run: wall time and peak memory vs video length and vs resolution (uavrt bench --scaling).

Defaults are sized for a small CPU (demo model, 1 step, 16x16 frames) and chosen so the length
sweep is exact window multiples: with --window 16 --window-overlap 2 the lengths 16, 30, 58, 114
are 1, 2, 4, 8 windows, so "linear in frames" is tested without the partial-window step.
Expected: time linear in frames (R^2 near 1) and flat peak RSS (ratio near 1); time grows with
pixels at least linearly. One torch thread by default: on a shared machine a multi-threaded run
waits for its descheduled peer threads (and spins while waiting, inflating even CPU time), which
buries the scaling under the neighbours' load. Writes benchmarks/results/scaling_<machine>.{jsonl,md,png} and the
fit summary (.scaling.json). Any `uavrt bench` flag can be appended to override, e.g.

    python benchmarks/scaling.py --random-weights --device cuda --precision fp16 --size 64x64 --steps 30
    python benchmarks/scaling.py --summarize benchmarks/results/scaling_<machine>.jsonl  # tables only
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

DEFAULTS = ["--scaling", "--size", "16x16", "--frames", "16", "--steps", "1", "--guidance", "1",
            "--window", "16", "--window-overlap", "2", "--scaling-frames", "16,30,58,114",
            "--scaling-sizes", "16x16,32x32,64x64", "--reps", "2", "--warmup", "1", "--threads", "1"]


def summarize_file(jsonl: Path) -> int:
    """Rebuild the Markdown and the fit summary from an existing results file (no runs)."""
    import json
    from uavrt.bench.env import machine_name
    from uavrt.bench.report import markdown_table
    from uavrt.bench.scaling import scaling_markdown, summarize
    results = [json.loads(x) for x in jsonl.read_text().splitlines() if x.strip()]
    ok = [r for r in results if r.get("status") == "ok"]
    summary = summarize(results)
    md = markdown_table(results, machine_name(ok[0]["env"]), ok[0]["model"]["note"])
    md += "\n\nScaling (least-squares fits):\n\n" + scaling_markdown(summary)
    jsonl.with_suffix(".md").write_text(md + "\n")
    jsonl.with_suffix(".scaling.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(md)
    return 0


def main(argv=None) -> int:
    import argparse
    from uavrt.commands.bench import add_bench_args, run_bench
    from uavrt.bench.env import environment, machine_tag
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--summarize"]:
        return summarize_file(Path(argv[1]))
    if not any(x in argv for x in ("--demo", "--weights", "--random-weights")):
        argv.append("--demo")
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_bench_args(p)
    a = p.parse_args(DEFAULTS + argv)  # later flags win
    stem = ROOT / "benchmarks" / "results" / f"scaling_{machine_tag(environment(a.device))}"
    a.json = a.json or str(stem.with_suffix(".jsonl"))
    a.markdown = a.markdown or str(stem.with_suffix(".md"))
    a.plot = a.plot or str(stem.with_suffix(".png"))
    return run_bench(a)


if __name__ == "__main__":
    sys.exit(main())
