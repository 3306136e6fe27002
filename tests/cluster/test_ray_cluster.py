"""uavrt on a local Ray cluster of 2 CPU workers: outputs byte-identical to the local path, a
worker killed mid-run, deterministic errors failing fast.

Network rule: the cluster runs inside `unshare -n -p -f` (a network namespace holding only
loopback, brought up, and a PID namespace): Ray can bind nothing but 127.0.0.1, and every
process it starts is killed by the kernel when the namespace's first process exits. The
scenarios run once per module in that subprocess (ray_scenarios.py); the assertions are here.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

HERE = Path(__file__).parent
REPO = HERE.parent.parent
TIMEOUT_S = 600  # about 90 s on an idle 2-core machine; much more when it is shared


def _why_not() -> str | None:
    try:
        import ray  # noqa: F401
    except ImportError:
        return "Ray is not installed (pip install 'uavrt[ray]')"
    if os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("ip"):
        return "needs root with unshare and ip: Ray tests run only in a loopback-only network namespace"
    probe = subprocess.run(["unshare", "-n", "-p", "-f", "--mount-proc", "sh", "-c", "ip link set lo up"],
                           capture_output=True, text=True, timeout=30)
    if probe.returncode != 0:
        return f"cannot create a loopback-only network namespace here: {probe.stderr.strip()[:200]}"
    return None


def _leftovers(marker: str) -> list:
    import psutil
    found = []
    for p in psutil.process_iter(["pid", "cmdline"]):
        try:
            if marker in " ".join(p.info["cmdline"] or []):
                found.append(p.info["pid"])
        except psutil.Error:
            pass
    return found


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    why = _why_not()
    if why:
        pytest.skip(why)
    work = tmp_path_factory.mktemp("ray")
    ray_tmp = tempfile.mkdtemp(prefix="uavrt-ray-", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
               OMP_NUM_THREADS="1",  # the local reference and the workers use the same torch threads
               RAY_AUTH_MODE="disabled",  # nothing outside the namespace can reach it; no token in ~/.ray
               UAVRT_RAY_TMP=ray_tmp, UAVRT_CACHE_DIR=str(work / "cache"), TQDM_DISABLE="1")
    cmd = ["unshare", "-n", "-p", "-f", "--kill-child", "--mount-proc", "sh", "-c",
           'ip link set lo up && exec "$0" "$@"', sys.executable, str(HERE / "ray_scenarios.py"), str(work)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        log, _ = proc.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        # SIGKILL to unshare: --kill-child takes the namespace's first process with it, and the kernel
        # then kills every process of the PID namespace (SIGTERM would be ignored by that pid 1)
        proc.kill()
        log, _ = proc.communicate(timeout=60)
        log += f"\n[timed out after {TIMEOUT_S} s]"
    (work / "log.txt").write_text(log)
    left = _leftovers(ray_tmp)
    shutil.rmtree(ray_tmp, ignore_errors=True)
    res_file = work / "results.json"
    results = json.loads(res_file.read_text()) if res_file.exists() else {"scenarios": {}}
    return {"work": work, "results": results, "rc": proc.returncode, "log": log, "leftovers": left}


def _scenario(run, name):
    s = run["results"]["scenarios"].get(name)
    assert s is not None, f"scenario {name} did not run; log tail:\n{run['log'][-3000:]}"
    assert s["ok"], f"{name}: {s.get('error')}\n{s.get('traceback', '')}"
    return s


def _same_bytes(a: Path, b: Path):
    assert a.is_file() and b.is_file(), (a, b)
    assert a.read_bytes() == b.read_bytes(), f"{a} differs from {b}"


def test_cluster_ran_on_loopback_and_left_no_process(run):
    r = run["results"]
    assert run["rc"] == 0, run["log"][-3000:]
    assert r.get("node_ip") == "127.0.0.1"
    assert r.get("local_rc") == [0, 0]
    assert r.get("shutdown_ok") is True
    assert run["leftovers"] == []


def test_file_on_ray_is_byte_identical_to_local(run):
    _scenario(run, "api_file")
    _same_bytes(run["work"] / "local/clip.mp4", run["work"] / "ray/clip.mp4")


def test_folder_of_three_videos_with_the_cli_flag_is_byte_identical(run):
    assert _scenario(run, "cli_folder")["rc"] == 0
    for name in ("a", "b", "c"):
        _same_bytes(run["work"] / f"local_folder/{name}.mp4", run["work"] / f"ray_folder/{name}.mp4")


def _windows_of(stats):
    return sum(w["windows"] for w in stats.values())


@pytest.mark.parametrize("how", ["kill_process", "kill_actor"])
def test_worker_killed_mid_run_same_output(run, how):
    s = _scenario(run, how)
    _same_bytes(run["work"] / "local/clip.mp4", run["work"] / f"{how}/clip.mp4")
    killed = s["stats"][s["killed"]]
    assert s["inflight_at_kill"][s["killed"]] >= 1  # it held windows when it died
    assert killed["failures"] == s["before"][s["killed"]]["failures"] + 1  # noticed, its windows re-sent
    n_windows = 4  # 13 frames, windows of 4 overlapping by 1
    assert _windows_of(s["stats"]) - _windows_of(s["before"]) == n_windows  # each consumed exactly once
    windows = [e for e in s["events"] if e[0] == "windows"]
    assert [e[1] for e in windows] == list(range(1, n_windows + 1)) and windows[-1][2] == n_windows
    if how == "kill_actor":
        assert killed["state"] == "dead"
    else:  # Ray restarted the process (max_restarts): back in the pool or still reloading
        assert killed["state"] in ("ok", "probation")


def test_workers_reading_shared_files_give_the_same_output(run):
    _scenario(run, "shared_frames")
    _same_bytes(run["work"] / "local_folder/b.mp4", run["work"] / "shared/b.mp4")


def test_bad_weights_fail_the_job_at_once_with_the_error(run):
    s = _scenario(run, "bad_weights")
    assert s["rc"] == 2
    assert "missing config for unet" in run["log"]
    assert not (run["work"] / "bad/clip.mp4").exists()


def test_malformed_window_fails_once_without_retry(run):
    s = _scenario(run, "bad_window")
    err = s["error_raised"]
    assert err is not None and "InputError" in err["mro"], err
    assert "expected uint8 frames [4, h, w, 3]" in err["msg"]
    assert s["attempts"] == 1
    assert all(w["failures"] == s["before"][n]["failures"] and w["state"] == "ok" for n, w in s["stats"].items())
