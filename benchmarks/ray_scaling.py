"""Ray scaling benchmark (issue 12): the same demo clip on 1 and 2 local Ray workers.

Measures per configuration, after a warm-up job on the same workers (the model is loaded once
per worker and stays loaded, as in a serving stack): wall time (median of --repeats), windows
per second, the driver's peak RSS during the job (psutil polling, minus the RSS before it), and
the workers' own throughput. Baselines in the same run: the local path (no Ray) with 1 torch
thread and with 2. Every output is checked byte-identical to the 1-thread local output.
Also reports the bytes one window costs on the network at 854x480 input, from the shapes and
from a pickled WindowOutput at the benchmark's size scaled by pixels.

Network rule: Ray runs inside a loopback-only network namespace; the script re-executes itself
under `unshare -n -p -f` (root needed) unless --no-netns.

    python benchmarks/ray_scaling.py [--frames 40] [--size 32x32] [--steps 2] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from fractions import Fraction
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--frames", type=int, default=40)
    p.add_argument("--size", default="32x32", help="low-res WxH")
    p.add_argument("--steps", type=int, default=2)
    p.add_argument("--window", type=int, default=8)
    p.add_argument("--overlap", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--workers", default="1,2")
    p.add_argument("--local-threads", default="1,2", help="torch threads of the local baselines (1 is needed)")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    p.add_argument("--no-netns", action="store_true", help="already in a loopback-only namespace")
    return p.parse_args(argv)


class PeakRSS:
    """Peak RSS of this process while the block runs, polled at 50 Hz, above the RSS at entry."""

    def __enter__(self):
        import psutil
        self.proc, self.stop = psutil.Process(), threading.Event()
        self.base = self.peak = self.proc.memory_info().rss
        self.t = threading.Thread(target=self._poll, daemon=True)
        self.t.start()
        return self

    def _poll(self):
        while not self.stop.wait(0.02):
            self.peak = max(self.peak, self.proc.memory_info().rss)

    def __exit__(self, *exc):
        self.stop.set()
        self.t.join()
        self.peak = max(self.peak, self.proc.memory_info().rss)

    @property
    def mb(self):
        return round(self.peak / 2 ** 20, 1), round((self.peak - self.base) / 2 ** 20, 1)


def window_bytes(T, h, w, overlap, float_frames_per_window):
    """Bytes of one interior window at low-res h x w: in = uint8 frames; back = uint8 output
    frames + the float32 frames the driver cross-fades (overlap at both ends)."""
    inp = T * h * w * 3
    out_u8 = T * 4 * h * 4 * w * 3
    out_f32 = float_frames_per_window * 4 * h * 4 * w * 3 * 4
    return {"input": inp, "output_uint8": out_u8, "output_float32": out_f32, "total_back": out_u8 + out_f32}


def bench(a):
    import torch
    from uavrt.cluster import Cluster, ClusterOptions, ModelSpec
    from uavrt.cluster.session import connect
    from uavrt.config import RunConfig, SamplerConfig, WindowConfig
    from uavrt.runtime.files import OutputConfig
    from uavrt.runtime.plan import window_spans
    from uavrt.runtime.upscaler import Upscaler
    from uavrt.runtime.video.synth import write_test_video
    from uavrt.runtime.files import upscale_file

    w, h = (int(x) for x in a.size.split("x"))
    work = Path(tempfile.mkdtemp(prefix="uavrt-raybench-"))
    src = work / "clip.mp4"
    write_test_video(src, frames=a.frames, width=w, height=h, fps=Fraction(24), codec="libx264", pix_fmt="yuv420p",
                     audio="aac")
    cfg = RunConfig(sampler=SamplerConfig(steps=a.steps), window=WindowConfig(frames=a.window, overlap=a.overlap))
    n_windows = len(window_spans(a.frames, a.window, a.overlap))
    out = OutputConfig(overwrite=True)
    rows, ref = [], None

    # --- baselines: the local path, one process, 1 and 2 torch threads -------------------------
    up = Upscaler.demo(cfg)
    for threads in sorted(int(x) for x in a.local_threads.split(",")):
        torch.set_num_threads(threads)
        dst = work / f"local{threads}.mp4"
        upscale_file(up, src, dst, out)  # warm-up
        times = []
        for _ in range(a.repeats):
            with PeakRSS() as m:
                t0 = time.perf_counter()
                upscale_file(up, src, dst, out)
                times.append(time.perf_counter() - t0)
        ref = ref or dst.read_bytes()
        rows.append({"config": f"local, {threads} torch thread(s)", "workers": 0, "wall_s": statistics.median(times),
                     "wall_all": times, "windows_per_s": n_windows / statistics.median(times),
                     "driver_peak_rss_mb": m.mb[0], "driver_rss_growth_mb": m.mb[1],
                     "identical_to_local_1thread": dst.read_bytes() == ref})
        print(rows[-1], flush=True)
    torch.set_num_threads(1)
    del up

    # --- Ray: 1 and 2 workers of 1 CPU (1 torch thread) each --------------------------------------
    ncpu = max(int(x) for x in a.workers.split(","))
    t0 = time.perf_counter()
    with connect(None, num_cpus=ncpu, object_store_bytes=512 * 2 ** 20, temp_dir=tempfile.mkdtemp(prefix="ur-", dir="/tmp")) as (ray, ns):
        ray_start = time.perf_counter() - t0
        for n in (int(x) for x in a.workers.split(",")):
            with Cluster(ModelSpec(demo=True, run=cfg, threads=1), options=ClusterOptions(workers=n)) as c:
                dst = work / f"ray{n}.mp4"
                c.upscale_many([src], [dst], out=out)  # warm-up
                times = []
                before = c.stats()
                for _ in range(a.repeats):
                    with PeakRSS() as m:
                        t1 = time.perf_counter()
                        c.upscale_many([src], [dst], out=out)
                        times.append(time.perf_counter() - t1)
                st = c.stats()
                busy = {k: (st[k]["frames"] - before[k]["frames"]) for k in st}
                rows.append({"config": f"ray, {n} worker(s) x 1 CPU", "workers": n, "wall_s": statistics.median(times),
                             "wall_all": times, "windows_per_s": n_windows / statistics.median(times),
                             "driver_peak_rss_mb": m.mb[0], "driver_rss_growth_mb": m.mb[1],
                             "worker_fps": {k: v["fps"] for k, v in st.items()}, "frames_per_worker": busy,
                             "identical_to_local_1thread": dst.read_bytes() == ref})
                print(rows[-1], flush=True)

    # what one window ships, measured here (pickled) and computed at 854x480
    import pickle
    import numpy as np
    from uavrt.runtime.stream import WindowOutput
    from uavrt.runtime.plan import Span
    T, ov = a.window, a.overlap
    wo = WindowOutput(Span(0, T), np.zeros((T, 4 * h, 4 * w, 3), np.uint8),
                      {f: np.zeros((4 * h, 4 * w, 3), np.float32) for f in range(2 * ov)})
    measured = len(pickle.dumps(wo, protocol=5))
    shapes_here = window_bytes(T, h, w, ov, 2 * ov)
    at_480p = window_bytes(32, 480, 854, 4, 8)
    result = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores (shared with other jobs), "
                   f"load average at start {os.getloadavg()[0]:.1f}",
        "torch": torch.__version__, "ray": ray.__version__, "clip": f"{a.frames} frames {w}x{h}, window {T}/{ov}, "
        f"{n_windows} windows, demo model, {a.steps} steps", "ray_start_s": ray_start, "rows": rows,
        "window_bytes_here": {"pickled_output": measured, **shapes_here},
        "window_bytes_854x480_T32_overlap4": at_480p,
        "load_average_end": os.getloadavg()[0],
    }
    shutil.rmtree(work, ignore_errors=True)
    return result


def write(result, out: Path):
    out.mkdir(parents=True, exist_ok=True)
    (out / "ray_scaling_cpu-2c.json").write_text(json.dumps(result, indent=1))
    base = {r["workers"]: r for r in result["rows"] if r["workers"]}
    lines = [f"# Ray scaling, {result['clip']}", "", f"Machine: {result['machine']}; torch {result['torch']}, "
             f"ray {result['ray']}; Ray start {result['ray_start_s']:.1f} s; load average at end "
             f"{result['load_average_end']:.1f}.", "",
             "| config | wall s (median) | windows/s | vs 1 worker | driver peak RSS MB (growth) | identical |",
             "|---|---|---|---|---|---|"]
    one = base.get(1)
    for r in result["rows"]:
        ratio = f"{one['wall_s'] / r['wall_s']:.2f}x" if one else ""
        lines.append(f"| {r['config']} | {r['wall_s']:.2f} | {r['windows_per_s']:.2f} | {ratio} | "
                     f"{r['driver_peak_rss_mb']} (+{r['driver_rss_growth_mb']}) | {r['identical_to_local_1thread']} |")
    b = result["window_bytes_854x480_T32_overlap4"]
    lines += ["", f"One interior window at 854x480 input (32 frames, overlap 4): {b['input'] / 1e6:.1f} MB out "
              f"(uint8), {b['total_back'] / 1e6:.1f} MB back ({b['output_uint8'] / 1e6:.1f} MB uint8 frames + "
              f"{b['output_float32'] / 1e6:.1f} MB float32 cross-fade frames). Pickled WindowOutput at the "
              f"benchmark's size: {result['window_bytes_here']['pickled_output']} B vs "
              f"{result['window_bytes_here']['total_back']} B from the shapes."]
    (out / "ray_scaling_cpu-2c.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main(argv=None):
    a = parse_args(argv)
    if not a.no_netns:
        cmd = ["unshare", "-n", "-p", "-f", "--kill-child", "--mount-proc", "sh", "-c",
               'ip link set lo up && exec "$0" "$@"', sys.executable, __file__, *(argv or sys.argv[1:]), "--no-netns"]
        env = dict(os.environ, RAY_AUTH_MODE="disabled", OMP_NUM_THREADS="1", TQDM_DISABLE="1")
        return subprocess.call(cmd, env=env)
    write(bench(a), Path(a.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
