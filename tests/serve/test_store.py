"""The job store on its own: FIFO claims, atomic queue limit, recovery after a crash, retention."""

from __future__ import annotations

import time

import pytest

from uavrt.serve.store import JobStore
from uavrt.serve.uploads import display_name, input_suffix


def add(store, name="a.mp4", max_queue=100, owned=True):
    jid = store.new_id()
    d = store.job_dir(jid)
    d.mkdir(parents=True)
    (d / "input.mp4").write_bytes(b"x")
    return store.add(jid, name=name, input_path=str(d / "input.mp4"), input_owned=owned, settings={"steps": 1},
                     info={"frames": 8}, max_queue=max_queue)


def test_fifo_claims_and_requeue_keeps_the_place(tmp_path):
    s = JobStore(tmp_path)
    a, b, c = add(s), add(s), add(s)
    assert s.claim_next().id == a.id
    assert s.get(a.id).state == "running" and s.get(a.id).attempts == 1
    s.requeue(a.id)  # e.g. graceful shutdown: back to the front, not the end
    assert [s.claim_next().id for _ in range(3)] == [a.id, b.id, c.id]
    assert s.claim_next() is None


def test_queue_limit_is_atomic_with_the_insert(tmp_path):
    s = JobStore(tmp_path)
    assert add(s, max_queue=2) and add(s, max_queue=2)
    assert add(s, max_queue=2) is None
    assert s.counts()["queued"] == 2
    s.claim_next()  # a running job does not count as waiting
    assert add(s, max_queue=2) is not None


def test_recover_after_a_crash(tmp_path):
    s = JobStore(tmp_path)
    running, queued, done = add(s), add(s), add(s)
    s.claim_next()
    s.finish(done.id, "succeeded", result_bytes=3)
    s.result_path(done.id).write_bytes(b"out")
    (s.job_dir(running.id) / ".result.partial.abc.mp4").write_bytes(b"half")  # encoder temp of a killed run
    (s.uploads / "x.upload").write_bytes(b"half an upload")
    (s.jobs_root / "deadbeef").mkdir()  # a folder whose record was never committed
    gone = add(s)
    (s.job_dir(gone.id) / "input.mp4").unlink()
    s.close()

    s = JobStore(tmp_path)  # "restart"
    report = s.recover()
    assert report == {"requeued": 1, "orphans": 1, "partials": 1, "uploads": 1, "missing_input": 1}
    assert s.get(running.id).state == "queued" and s.claim_next().id == running.id
    assert s.get(queued.id).state == "queued"
    assert s.get(done.id).state == "succeeded" and s.result_path(done.id).read_bytes() == b"out"
    assert s.get(gone.id).state == "failed" and "disappeared" in s.get(gone.id).error
    assert not list(s.uploads.iterdir()) and not (s.jobs_root / "deadbeef").exists()
    assert not list(s.jobs_root.rglob("*.partial.*"))


def test_retention_deletes_only_old_finished_jobs(tmp_path):
    s = JobStore(tmp_path)
    old, fresh, waiting = add(s), add(s), add(s)
    s.finish(old.id, "succeeded", result_bytes=1)
    s.finish(fresh.id, "failed", error="x")
    now = time.time()
    assert s.expire(3600, now=now) == []  # finished just now: kept
    assert s.get(old.id).state == "succeeded" and s.job_dir(old.id).exists()
    assert sorted(s.expire(3600, now=now + 7200)) == sorted([old.id, fresh.id])
    assert s.get(old.id) is None and not s.job_dir(old.id).exists() and s.get(fresh.id) is None
    assert s.get(waiting.id).state == "queued" and s.job_dir(waiting.id).exists()


def test_path_submitted_input_is_never_deleted(tmp_path):
    s = JobStore(tmp_path / "jobs")
    user_file = tmp_path / "mine.mp4"
    user_file.write_bytes(b"video")
    jid = s.new_id()
    s.job_dir(jid).mkdir(parents=True)
    s.add(jid, name="mine.mp4", input_path=str(user_file), input_owned=False, settings={}, info={}, max_queue=9)
    s.delete(jid)
    assert user_file.read_bytes() == b"video" and s.get(jid) is None


@pytest.mark.parametrize("given,shown", [("../../etc/passwd", "passwd"), ("C:\\Users\\x\\clip.mp4", "clip.mp4"),
                                         ("a/b/<script>.mp4", "_script_.mp4"), ("", "upload"), ("...", "upload")])
def test_client_names_are_labels_not_paths(given, shown):
    assert display_name(given) == shown
    assert "/" not in display_name(given) and "\\" not in display_name(given)


def test_stored_suffix_is_whitelisted():
    assert input_suffix("clip.MP4") == ".mp4" and input_suffix("x.sh") == "" and input_suffix("noext") == ""
