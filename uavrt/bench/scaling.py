"""Scaling runs: time and peak memory vs video length and vs resolution.

Expected from the runtime's design (uavrt/runtime/stream.py): time linear in frames (windows of
fixed size, each costs the same) and peak memory flat in frames (one window in flight); time
roughly linear in pixels at small sizes (convolutions) and super-linear once spatial attention
dominates. `summarize` fits time = a + b * x by least squares and reports R^2 and the memory
ratio largest/smallest, so both claims are checked by numbers, not by eye.
"""

from __future__ import annotations

from dataclasses import replace

from .scenario import Scenario


def scaling_scenarios(base: Scenario, frames: list, sizes: list) -> list:
    """[(sweep name, Scenario)]: lengths at base's size, then sizes at base's length."""
    out = [("frames", replace(base, frames=n)) for n in frames]
    out += [("resolution", replace(base, height=h, width=w)) for h, w in sizes]
    return out


def linear_fit(xs: list, ys: list) -> dict:
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx if sxx else 0.0
    a = my - b * mx
    ss_tot = sum((y - my) ** 2 for y in ys)
    ss_res = sum((y - (a + b * x)) ** 2 for x, y in zip(xs, ys))
    return {"intercept": a, "slope": b, "r2": 1 - ss_res / ss_tot if ss_tot else 1.0}


def summarize(results: list) -> dict:
    """Per backend and sweep: the fit of wall time vs x (frames, or low-res pixels) and memory."""
    out: dict = {}
    for r in results:
        if r.get("status") != "ok" or "sweep" not in r:
            continue
        key = f"{r['backend']} {r['precision']} / {r['sweep']}"
        out.setdefault(key, []).append(r)
    summary = {}
    for key, rs in out.items():
        sweep = rs[0]["sweep"]
        xs = [r["scenario"]["frames"] if sweep == "frames" else r["scenario"]["height"] * r["scenario"]["width"]
              for r in rs]
        ys = [r["wall_s"]["median_s"] for r in rs]
        cpu = [r["process_cpu_s"]["median_s"] for r in rs]
        mem = [r["peak_host_mb"] for r in rs]
        summary[key] = {
            "x": "frames" if sweep == "frames" else "low-res pixels", "points": list(zip(xs, ys, mem)),
            "fit_wall_s": linear_fit(xs, ys) if len(xs) > 1 else None,
            # CPU seconds hardly change when other processes take the cores: the robust fit on a
            # shared machine (wall time then says more about the neighbours than about uavrt)
            "cpu_s": cpu, "fit_cpu_s": linear_fit(xs, cpu) if len(xs) > 1 else None,
            "peak_host_mb_ratio": max(mem) / min(mem),
            "peak_gpu_mb_ratio": (max(g) / min(g)) if all(g := [r["peak_gpu_mb"] for r in rs]) else None,
        }
    return summary


def scaling_markdown(summary: dict) -> str:
    nan = {"slope": float("nan"), "intercept": float("nan"), "r2": float("nan")}
    lines = ["| sweep | x | points (x: wall s, CPU s, RSS MB) | wall: s per x, R^2 | CPU: s per x, intercept, R^2 "
             "| RSS max/min |", "|---|---|---|---|---|---|"]
    for key, s in summary.items():
        pts = "; ".join(f"{x}: {y:.2f} s, {c:.2f} s, {m:.0f} MB"
                        for (x, y, m), c in zip(s["points"], s.get("cpu_s", [float("nan")] * len(s["points"]))))
        f, g = s["fit_wall_s"] or nan, s.get("fit_cpu_s") or nan
        lines.append(f"| {key} | {s['x']} | {pts} | {f['slope']:.4g}, {f['r2']:.4f} | "
                     f"{g['slope']:.4g}, {g['intercept']:.3g}, {g['r2']:.4f} | {s['peak_host_mb_ratio']:.3f} |")
    return "\n".join(lines)
