"""Load figure of `uavrt serve` (issue 13): N tiny jobs submitted at once, all must complete.

A real server process (demo model, 1 step, no guidance) on 127.0.0.1; N client threads submit
one clip each at the same moment; then M more submissions while the queue is full show the
429 behaviour; every accepted job is polled to the end and its result downloaded and decoded.
Reported: accepted / refused / succeeded / lost, wall time, jobs per minute, per-job latency
(submit -> finished) median and max, and the server's RSS idle before, peak during (psutil,
polled every 0.2 s) and idle after. Every request loop is bounded in count and time.

    python benchmarks/serve_load.py [--jobs 20] [--extra 5] [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

TIMEOUT_S = 1800  # whole run


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(argv=None) -> int:
    import av
    import httpx
    import psutil
    from uavrt.runtime.video.synth import write_test_video

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--jobs", type=int, default=20)
    p.add_argument("--extra", type=int, default=5, help="submissions beyond a full queue")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    p.add_argument("--label", default="cpu-amd-epyc-2c")
    a = p.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="uavrt-serve-load-"))
    clip = work / "clip.mp4"
    write_test_video(clip, frames=8, width=16, height=16, codec="libx264", pix_fmt="yuv420p", audio="aac", fps=24)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    log = open(work / "server.log", "wb")
    # max-queue = jobs: all N fit (one of them starts at once), the extra ones meet a full queue
    proc = subprocess.Popen([sys.executable, "-m", "uavrt", "serve", "--demo", "--port", str(port), "--jobs-dir",
                             str(work / "jobs"), "--steps", "1", "--guidance", "0", "--max-queue", str(a.jobs)],
                            stdout=log, stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + TIMEOUT_S
    try:
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"server did not start: see {work / 'server.log'}")
            try:
                if httpx.get(url + "/v1/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.25)
        ps = psutil.Process(proc.pid)
        time.sleep(1.0)
        rss_before = ps.memory_info().rss
        peak = {"rss": rss_before}
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                try:
                    peak["rss"] = max(peak["rss"], ps.memory_info().rss)
                except psutil.Error:
                    return
                time.sleep(0.2)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        data = clip.read_bytes()
        client = httpx.Client(base_url=url, timeout=120, limits=httpx.Limits(max_connections=a.jobs + a.extra))
        barrier = threading.Barrier(a.jobs)

        def submit(i, wait=True):
            if wait:
                barrier.wait(timeout=60)
            r = client.post("/v1/jobs", files={"video": (f"clip{i}.mp4", data, "video/mp4")},
                            data={"settings": json.dumps({"seed": i})})
            return r.status_code, (r.json().get("id") if r.status_code == 202 else r.json().get("error"))

        t0 = time.monotonic()
        with ThreadPoolExecutor(a.jobs) as pool:
            first = list(pool.map(submit, range(a.jobs)))
        with ThreadPoolExecutor(a.extra) as pool:
            extra = list(pool.map(lambda i: submit(i, wait=False), range(a.jobs, a.jobs + a.extra)))
        accepted = [x for s, x in first + extra if s == 202]
        refused = [(s, x) for s, x in first + extra if s != 202]
        states, latencies = {}, []
        for jid in accepted:
            while time.monotonic() < deadline:
                j = client.get(f"/v1/jobs/{jid}").json()
                if j["state"] in ("succeeded", "failed", "cancelled"):
                    break
                time.sleep(0.2)
            states[jid] = j["state"]
            latencies.append(j["finished"] - j["created"])
        wall = time.monotonic() - t0
        stop.set()
        sampler.join(2)
        decoded_ok = 0
        for jid in accepted:
            if states[jid] != "succeeded":
                continue
            out = work / f"{jid}.mp4"
            out.write_bytes(client.get(f"/v1/jobs/{jid}/result").content)
            with av.open(str(out)) as c:
                frames = [f for f in c.decode(video=0)]
            decoded_ok += len(frames) == 8 and frames[0].width == 64
        time.sleep(1.0)
        rss_after = ps.memory_info().rss
        listed = {j["id"] for j in client.get("/v1/jobs", params={"limit": 1000}).json()["jobs"]}
        client.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()

    succeeded = sum(s == "succeeded" for s in states.values())
    result = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores ({a.label}; shared with "
                   f"other jobs)",
        "jobs_submitted_at_once": a.jobs, "extra_submissions": a.extra,
        "accepted": len(accepted), "refused": len(refused),
        "refused_codes": sorted({s for s, _ in refused}), "refused_message": refused[0][1] if refused else None,
        "succeeded": succeeded, "lost": len(accepted) - succeeded - sum(s in ("failed", "cancelled")
                                                                        for s in states.values()),
        "failed": sum(s == "failed" for s in states.values()), "results_decoded_ok": decoded_ok,
        "all_listed": set(accepted) <= listed, "ids_unique": len(set(accepted)) == len(accepted),
        "wall_s": round(wall, 2), "jobs_per_min": round(60 * succeeded / wall, 2),
        "latency_median_s": round(statistics.median(latencies), 2) if latencies else None,
        "latency_max_s": round(max(latencies), 2) if latencies else None,
        "rss_before_mb": round(rss_before / 2 ** 20, 1), "rss_peak_mb": round(peak["rss"] / 2 ** 20, 1),
        "rss_after_mb": round(rss_after / 2 ** 20, 1),
        "clip": "16x16, 8 frames, 24 fps, AAC audio; server: demo model, --steps 1 --guidance 0",
    }
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"serve_load_{a.label}.json").write_text(json.dumps(result, indent=2) + "\n")
    md = [f"# uavrt serve load figure ({result['machine']})", "", f"Clip: {result['clip']}.", "",
          "| measure | value |", "|---|---|"]
    md += [f"| {k} | {v} |" for k, v in result.items() if k not in ("machine", "clip")]
    (out / f"serve_load_{a.label}.md").write_text("\n".join(md) + "\n")
    print(json.dumps(result, indent=2))
    ok = succeeded == len(accepted) and decoded_ok == succeeded and len(accepted) >= a.jobs
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
