"""Jobs survive a crash: SIGKILL the server while a job runs, start it again on the same folder."""

from __future__ import annotations

import signal

from serve_helpers import Server


def test_sigkill_while_running_then_restart(tmp_path, clip):
    jobs = tmp_path / "jobs"
    s = Server(jobs).start()
    try:
        done = s.submit(clip, {"seed": 1}).json()["id"]
        assert s.wait(done)["state"] == "succeeded"
        result_before = s.client.get(f"/v1/jobs/{done}/result").content
        interrupted = s.submit(clip, {"steps": 12}).json()["id"]
        queued = s.submit(clip, {"seed": 2}).json()["id"]
        s.wait_running(interrupted, min_steps=1)
        s.kill(signal.SIGKILL)  # no shutdown handler runs: the record still says "running"
    finally:
        s.kill()
    assert s.proc.returncode == -signal.SIGKILL

    s2 = Server(jobs).start()
    try:
        # the finished job's result is served as before, byte for byte
        r = s2.client.get(f"/v1/jobs/{done}/result")
        assert r.status_code == 200 and r.content == result_before
        # the interrupted job was queued again at its old place and completes; then the queued one
        a, b = s2.wait(interrupted), s2.wait(queued)
        assert a["state"] == "succeeded" and a["attempts"] == 2, a
        assert b["state"] == "succeeded" and b["attempts"] == 1 and a["finished"] <= b["started"]
        assert a["progress"]["steps"] == {"done": 12, "total": 12}
        r = s2.client.get(f"/v1/jobs/{interrupted}/result")
        assert r.status_code == 200 and len(r.content) == a["result"]["bytes"]
        # nothing half-written is left: no partial encoder output, no upload in flight
        assert not list(jobs.rglob("*.partial.*")) and not list((jobs / "uploads").iterdir())
        assert sorted(p.name for p in (jobs / "jobs").iterdir()) == sorted([done, interrupted, queued])
    finally:
        s2.stop()
    assert s2.proc.returncode == 0  # SIGTERM: a clean shutdown
