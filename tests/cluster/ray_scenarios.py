"""The body of the Ray tests, run by test_ray_cluster.py as a script inside a network namespace
that holds only loopback (`unshare -n -p -f`), so the cluster binds 127.0.0.1 and nothing else,
and every process it starts dies with the namespace.

One local cluster (2 CPU workers) serves every scenario. The script only produces artifacts
(output files, exit codes, error texts, worker stats) in WORK/results.json; the assertions are
in the test module. Usage: python ray_scenarios.py WORK
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import traceback
from fractions import Fraction
from pathlib import Path

WORK = Path(sys.argv[1])
# windows of 4 frames overlapping by 1: several windows on a few tiny frames (CI time)
FAST = ["--demo", "--steps", "1", "--guidance", "1", "--window", "4", "--window-overlap", "1", "-q"]
CLIPS = {"clip": (13, 16, 16), "a": (4, 16, 16), "b": (7, 16, 16), "c": (4, 24, 16)}  # frames, width, height
results: dict = {"scenarios": {}}


def scenario(name):
    def wrap(fn):
        t0 = time.monotonic()
        try:
            results["scenarios"][name] = dict(fn() or {}, ok=True)
        except BaseException as e:  # recorded, the test reports it
            results["scenarios"][name] = {"ok": False, "error": f"{type(e).__name__}: {e}",
                                          "traceback": traceback.format_exc()}
        results["scenarios"][name]["seconds"] = round(time.monotonic() - t0, 2)
        (WORK / "results.json").write_text(json.dumps(results, indent=1, default=str))
        return fn
    return wrap


def main():
    import torch
    from uavrt.commands import main as cli
    from uavrt.cluster import Cluster, ClusterOptions, ModelSpec
    from uavrt.cluster.session import connect
    from uavrt.config import RunConfig, SamplerConfig, WindowConfig
    from uavrt.runtime.video.synth import write_test_video

    results["torch_threads"] = torch.get_num_threads()
    (WORK / "folder").mkdir()
    for name, (n, w, h) in CLIPS.items():
        dst = WORK / ("clip.mp4" if name == "clip" else f"folder/{name}.mp4")
        write_test_video(dst, frames=n, width=w, height=h, fps=Fraction(12), codec="libx264", pix_fmt="yuv420p",
                         audio="aac")

    # the local references: the same command without --ray, in this process (no Ray involved)
    t0 = time.monotonic()
    results["local_rc"] = [cli(["upscale", str(WORK / "clip.mp4"), "-o", str(WORK / "local/clip.mp4"), *FAST]),
                           cli(["upscale", str(WORK / "folder"), "-o", str(WORK / "local_folder"), *FAST])]
    results["local_s"] = round(time.monotonic() - t0, 2)

    t0 = time.monotonic()
    with connect(None, num_cpus=2, object_store_bytes=200 * 2 ** 20, temp_dir=os.environ["UAVRT_RAY_TMP"]) as (ray, ns):
        results["ray_start_s"] = round(time.monotonic() - t0, 2)
        results["node_ip"] = ray.util.get_node_ip_address()
        results["namespace"] = ns
        cfg = RunConfig(sampler=SamplerConfig(steps=1, guidance_scale=1.0), window=WindowConfig(frames=4, overlap=1))

        @scenario("cli_folder")
        def _():  # the command line, a folder of 3 videos, 2 at a time on 2 workers
            return {"rc": cli(["upscale", str(WORK / "folder"), "-o", str(WORK / "ray_folder"), *FAST,
                               "--ray", "--workers", "2"])}

        def killing(kill):
            """A progress callback that kills the worker holding the most windows after the first one."""
            state = {"killed": None, "events": []}

            def progress(kind, done, total):
                state["events"].append([kind, done, total if kind != "workers" else None])
                if kind == "workers" and state["killed"] is None:
                    busy = max(total, key=lambda n: (total[n]["inflight"], n))
                    state["killed"] = busy
                    state["inflight_at_kill"] = {n: w["inflight"] for n, w in total.items()}
                    kill(busy)
            return progress, state

        # one pool of 2 loaded workers for the API scenarios (the model loads once per worker)
        with Cluster(ModelSpec(demo=True, run=cfg), options=ClusterOptions(workers=2)) as c:
            results["workers"] = c.workers

            @scenario("api_file")
            def _():
                c.upscale_many([WORK / "clip.mp4"], [WORK / "ray/clip.mp4"])
                return {"stats": c.stats()}

            @scenario("shared_frames")
            def _():
                c.upscale_many([WORK / "folder/b.mp4"], [WORK / "shared/b.mp4"], frames="shared")
                return {"stats": c.stats()}

            @scenario("bad_window")
            def _():
                # a window that fails in the worker for a deterministic reason (a malformed chunk, as a
                # serving stack could send through the pool): the error comes back at once, no retry
                import numpy as np
                from uavrt.runtime.plan import Span
                before = c.stats()
                h = c.pool.submit("process", ray.put(cfg), np.zeros((4, 16, 16, 3), np.float32), Span(0, 4),
                                  frozenset(), label="bad")
                t = time.monotonic()
                try:
                    h.result()
                    err = None
                except Exception as e:
                    err = {"type": type(e).__name__, "mro": [k.__name__ for k in type(e).__mro__], "msg": str(e)}
                return {"error_raised": err, "attempts": h.attempts, "fail_s": round(time.monotonic() - t, 2),
                        "before": before, "stats": c.stats()}

            @scenario("kill_process")
            def _():
                pids = {w["name"]: w["pid"] for w in c.workers}
                progress, state = killing(lambda name: os.kill(pids[name], signal.SIGKILL))
                before = c.stats()
                c.upscale_many([WORK / "clip.mp4"], [WORK / "kill_process/clip.mp4"], progress=progress)
                return dict(state, before=before, stats=c.stats())

            @scenario("kill_actor")  # last: the killed worker does not come back
            def _():
                progress, state = killing(lambda name: ray.kill(ray.get_actor(name, namespace=ns)))
                before = c.stats()
                c.upscale_many([WORK / "clip.mp4"], [WORK / "kill_actor/clip.mp4"], progress=progress)
                return dict(state, before=before, stats=c.stats())

        @scenario("bad_weights")
        def _():
            broken = WORK / "broken_weights"
            (broken / "unet").mkdir(parents=True)
            t = time.monotonic()
            rc = cli(["upscale", str(WORK / "clip.mp4"), "-o", str(WORK / "bad/clip.mp4"), "--weights", str(broken),
                      *FAST[1:], "--ray", "--workers", "1"])
            return {"rc": rc, "fail_s": round(time.monotonic() - t, 2)}

    results["shutdown_ok"] = not ray.is_initialized()
    (WORK / "results.json").write_text(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    main()
