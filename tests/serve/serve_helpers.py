"""A real `uavrt serve` process on 127.0.0.1 (demo model, 1 step, no guidance) and tiny clips.

Every wait here is bounded in count and time; a server that does not come up fails the test
with its log.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

httpx = pytest.importorskip("httpx", reason="the serve tests need httpx (pip install -e '.[test]')")
pytest.importorskip("fastapi", reason="uavrt serve needs the serve extra (pip install -e '.[serve]')")

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 180  # model load on a shared 2-core machine
JOB_TIMEOUT_S = 180
FAST = ["--steps", "1", "--guidance", "0"]  # server defaults: one step, batch 1


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, jobs_dir: Path, args=(), log: Path | None = None):
        self.jobs_dir, self.args = Path(jobs_dir), list(args)
        self.log_path = log or self.jobs_dir.parent / f"{self.jobs_dir.name}-server.log"
        self.proc = None

    def start(self):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
        cmd = [sys.executable, "-m", "uavrt", "serve", "--demo", "--port", str(self.port), "--jobs-dir",
               str(self.jobs_dir), *FAST, *self.args]
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, env=env, cwd=REPO)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if httpx.get(self.url + "/v1/health", timeout=2).status_code == 200:
                    self.client = httpx.Client(base_url=self.url, timeout=60)
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        self.kill()
        raise AssertionError(f"server did not answer /v1/health within {START_TIMEOUT_S} s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def kill(self, sig=signal.SIGKILL):
        if getattr(self, "client", None) is not None:
            self.client.close()  # no idle keep-alive connection for a graceful shutdown to wait on
            self.client = None
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)
        if getattr(self, "_log", None) is not None:
            self._log.close()
            self._log = None

    def stop(self):
        self.kill(signal.SIGTERM)

    # --- helpers -------------------------------------------------------------------------------
    def submit(self, clip: Path, settings: dict | None = None, headers=None, name=None):
        import json
        data = {"settings": json.dumps(settings)} if settings is not None else {}
        with open(clip, "rb") as f:
            return self.client.post("/v1/jobs", files={"video": (name or clip.name, f, "video/mp4")}, data=data,
                                    headers=headers)

    def job(self, job_id: str, headers=None) -> dict:
        r = self.client.get(f"/v1/jobs/{job_id}", headers=headers)
        assert r.status_code == 200, r.text
        return r.json()

    def wait(self, job_id: str, until=("succeeded", "failed", "cancelled"), timeout=JOB_TIMEOUT_S, headers=None,
             pred=None) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            j = self.job(job_id, headers)
            if (pred(j) if pred else j["state"] in until):
                return j
            time.sleep(0.1)
        raise AssertionError(f"job {job_id} still {j['state']} after {timeout} s: {j}\n{self.log()}")

    def wait_running(self, job_id: str, min_steps=1, headers=None) -> dict:
        def pred(j):
            assert j["state"] in ("queued", "running"), j
            p = j["progress"] or {}
            return j["state"] == "running" and (p.get("steps") or {}).get("done", 0) >= min_steps
        return self.wait(job_id, pred=pred, headers=headers)

    def leftovers(self) -> dict:
        """What a refused request could have left: uploads in flight, job folders, records."""
        uploads = sorted(p.name for p in (self.jobs_dir / "uploads").iterdir())
        dirs = sorted(p.name for p in (self.jobs_dir / "jobs").iterdir())
        return {"uploads": uploads, "job_dirs": dirs}


def make_clip(path: Path, frames=8, width=16, height=16, audio="aac") -> Path:
    from uavrt.runtime.video.synth import write_test_video
    write_test_video(path, frames=frames, width=width, height=height, codec="libx264", pix_fmt="yuv420p",
                     audio=audio, fps=24)
    return path
