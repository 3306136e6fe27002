"""Results out: JSON lines (one per scenario and backend), a Markdown table, a PNG chart."""

from __future__ import annotations

import json
from pathlib import Path

from .clock import STAGES

# Keys every successful result line has (values may be null with a *_why reason).
SCHEMA = ("backend", "status", "scenario", "env", "model", "wall_s", "stages", "fps", "s_per_frame",
          "peak_host_mb", "peak_gpu_mb", "unet_flops_per_call", "achieved_tflops", "mfu", "load_s",
          "unaccounted_s", "vs_first", "cpu_per_wall", "host_load_1m", "process_cpu_s")
NULL_REASONS = {"peak_gpu_mb": "peak_gpu_why", "mfu": "mfu_why", "propagation_gbps": "propagation_why"}
STAT_KEYS = ("median_s", "min_s", "max_s")


def add_ratios(results: list, backends: list) -> list:
    """Per scenario, each backend's wall time against the first backend that ran it."""
    by_scenario: dict = {}
    for r in results:
        if r.get("status") == "ok":
            by_scenario.setdefault(r.get("scenario_id", r["label"]), {})[r["backend"]] = r
    for group in by_scenario.values():
        first = next((b for b in backends if b in group), None)
        for b, r in group.items():
            base = group[first]["wall_s"]["median_s"]
            r["vs_first"] = {"backend": first, "wall_ratio": r["wall_s"]["median_s"] / base,
                             "speedup": base / r["wall_s"]["median_s"]}
    return results


def write_jsonl(results: list, path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        for r in results:
            f.write(json.dumps(r, sort_keys=False) + "\n")
    return path


def _ms(x) -> str:
    return "-" if x is None else (f"{x * 1e3:.0f}" if x >= 0.1 else f"{x * 1e3:.1f}")


def _num(x, fmt="{:.2f}") -> str:
    return "-" if x is None else fmt.format(x)


def markdown_table(results: list, machine: str, model_note: str) -> str:
    ok = [r for r in results if r.get("status") == "ok"]
    stages = [s for s in STAGES if any(s in r["stages"] for r in ok)]
    head = (["scenario", "backend", "wall s (min-max)", "vs first", "fps", "s/frame"]
            + [f"{s} ms" for s in stages]
            + ["other %", "CPU/wall", "load", "U-Net ms/step", "U-Net GFLOP/call", "TFLOP/s", "MFU", "prop GB/s", "peak RSS MB",
               "peak GPU MB"])
    lines = [f"Machine: {machine}", f"Model: {model_note}", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in ok:
        w = r["wall_s"]
        cells = [r["label"], f"{r['backend']} {r['precision']}",
                 f"{w['median_s']:.2f} ({w['min_s']:.2f}-{w['max_s']:.2f})",
                 _num(r.get("vs_first", {}).get("wall_ratio"), "{:.2f}x"), f"{r['fps']:.2f}",
                 f"{r['s_per_frame']:.3f}"]
        cells += [_ms(r["stages"][s]["median_s"]) if s in r["stages"] else "-" for s in stages]
        ups = r["per_unit"].get("unet_per_step", {}).get("median_s")
        flops = r["unet_flops_per_call"]
        load = r["host_load_1m"]
        cells += [f"{100 * r['unaccounted_s']['fraction']:.1f}", f"{r['cpu_per_wall']:.2f}",
                  f"{_num(load['before'], '{:.1f}')}/{_num(load['after'], '{:.1f}')}", _ms(ups),
                  _num(flops / 1e9 if flops else None, "{:.4g}"), _num(r["achieved_tflops"], "{:.3g}"),
                  _num(r["mfu"], "{:.1%}"), _num(r.get("propagation_gbps"), "{:.2f}"),
                  f"{r['peak_host_mb']:.0f}", _num(r["peak_gpu_mb"], "{:.0f}")]
        lines.append("| " + " | ".join(cells) + " |")
    notes = sorted({f"{k}: {r[v]}" for r in ok for k, v in NULL_REASONS.items() if r.get(k) is None and r.get(v)})
    notes += [f"{r['backend']} {r.get('label', '')}: {r['status']}: {r['error']}".replace("  ", " ")
              for r in results if r.get("status") != "ok"]
    if notes:
        lines += [""] + [f"- {n}" for n in notes]
    lines += ["", "Times are medians over the measured runs (warm-up excluded); stage columns are per run; "
                  "'other' is the wall time no stage covers; 'U-Net ms/step' is per denoising step over the "
                  "whole video (all windows and clips); 'CPU/wall' is this process's CPU seconds per wall second "
                  "and 'load' the 1-minute load average before/after: a load above the core count means other "
                  "processes competed for the CPU."]
    return "\n".join(lines)


def plot(results: list, path) -> Path:
    """Per-stage median time stacked per backend, one group of bars per scenario (Agg, no GUI)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    ok = [r for r in results if r.get("status") == "ok"]
    if not ok:
        raise ValueError("nothing to plot: no backend produced a result")
    stages = [s for s in STAGES if any(s in r["stages"] for r in ok)] + ["other"]
    fig = Figure(figsize=(max(6.0, 1.1 * len(ok) + 3), 4.8))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    labels = [f"{r['label']}\n{r['backend']} {r['precision']}" for r in ok]
    bottom = [0.0] * len(ok)
    for s in stages:
        vals = [max(r["unaccounted_s"]["median_s"], 0.0) if s == "other" else r["stages"].get(s, {}).get("median_s", 0.0)
                for r in ok]
        ax.bar(range(len(ok)), vals, bottom=bottom, label=s, color="0.75" if s == "other" else None)
        bottom = [b + v for b, v in zip(bottom, vals)]
    for i, r in enumerate(ok):
        ax.errorbar(i, r["wall_s"]["median_s"], yerr=[[r["wall_s"]["median_s"] - r["wall_s"]["min_s"]],
                                                      [r["wall_s"]["max_s"] - r["wall_s"]["median_s"]]],
                    fmt="k_", capsize=4)
    ax.set_xticks(range(len(ok)), labels, fontsize=7)
    ax.set_ylabel("seconds per run (median; bar: wall min-max)")
    ax.set_title(f"uavrt bench: {ok[0]['env']['cpu_model']}, {ok[0]['env']['gpu'] or 'no GPU'}", fontsize=9)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(str(path), dpi=120)
    return path
