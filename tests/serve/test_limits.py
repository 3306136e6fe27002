"""Bearer token, full queue and disk quota against a real server process."""

from __future__ import annotations

import time

import pytest

from serve_helpers import Server

TOKEN = "s3cret-token-for-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("serve-limits") / "jobs",
               ["--token", TOKEN, "--max-queue", "2", "--disk-quota-gb", "0.002"])
    s.start()
    yield s
    s.stop()


def test_token_required(server, clip):
    before = server.leftovers()
    r = server.submit(clip)
    assert r.status_code == 401 and "bearer token" in r.json()["error"]
    assert r.headers["www-authenticate"].startswith("Bearer")
    r = server.submit(clip, headers={"Authorization": "Bearer wrong-token-xxxxxxx"})
    assert r.status_code == 401 and "wrong" in r.json()["error"]
    r = server.submit(clip, headers={"Authorization": f"Basic {TOKEN}"})
    assert r.status_code == 401
    for path in ("/v1/jobs", "/v1/jobs/x", "/v1/jobs/x/result", "/v1/metrics"):
        assert server.client.get(path).status_code == 401, path
    assert server.client.delete("/v1/jobs/x").status_code == 401
    assert server.client.get("/v1/health").status_code == 200  # for load balancers
    assert server.leftovers() == before
    r = server.submit(clip, headers=AUTH)
    assert r.status_code == 202
    assert server.wait(r.json()["id"], headers=AUTH)["state"] == "succeeded"


def test_full_queue_is_429(server, clip):
    running = server.submit(clip, {"steps": 400}, headers=AUTH).json()["id"]
    server.wait_running(running, headers=AUTH)
    waiting = [server.submit(clip, headers=AUTH) for _ in range(2)]
    assert [r.status_code for r in waiting] == [202, 202]
    before = server.leftovers()
    r = server.submit(clip, headers=AUTH)
    assert r.status_code == 429 and "--max-queue" in r.json()["error"] and r.headers["retry-after"]
    assert server.leftovers() == before
    for jid in [running] + [r.json()["id"] for r in waiting]:
        server.client.delete(f"/v1/jobs/{jid}", headers=AUTH)
    assert server.wait(running, headers=AUTH, timeout=60)["state"] == "cancelled"
    r = server.submit(clip, headers=AUTH)  # room again
    assert r.status_code == 202
    server.client.delete(f"/v1/jobs/{r.json()['id']}", headers=AUTH)
    deadline = time.monotonic() + 60  # the last one may be running: wait until its files are gone
    while (server.jobs_dir / "jobs" / r.json()["id"]).exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not (server.jobs_dir / "jobs" / r.json()["id"]).exists()


def test_disk_quota_is_507(server):
    before = server.leftovers()
    big = b"\0" * 2_500_000  # the quota is 0.002 GB = 2.1 MB for the whole jobs folder
    r = server.client.post("/v1/jobs", files={"video": ("big.mp4", big)}, headers=AUTH)
    assert r.status_code == 507 and "--disk-quota-gb" in r.json()["error"]
    assert server.leftovers() == before
