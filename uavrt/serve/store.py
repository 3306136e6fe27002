"""Job records in SQLite (WAL) and the job folders beside them.

Layout of the jobs folder:
    jobs.sqlite (+ -wal, -shm)   one row per job; the only record of state
    uploads/                     request bodies being received (removed on any failure)
    jobs/<id>/input[.ext]        the uploaded video (ext from a whitelist, never the client's name)
    jobs/<id>/result.mp4         written by the encoder to a temporary name, renamed when complete

A process can die at any point; `recover()` (run at start) puts everything back in a state the
worker understands: a job that was running is queued again at its old position, leftover
uploads and partial results are removed, job folders without a record are removed, records
whose input vanished fail with that reason.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

STATES = ("queued", "running", "succeeded", "failed", "cancelled")
FINISHED = ("succeeded", "failed", "cancelled")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,  -- FIFO order; a re-queued job keeps its place
    id TEXT UNIQUE NOT NULL,
    state TEXT NOT NULL,
    created REAL NOT NULL,
    started REAL,
    finished REAL,
    name TEXT NOT NULL,           -- display name only (sanitised); never used as a path
    input TEXT NOT NULL,          -- absolute path of the input
    input_owned INTEGER NOT NULL, -- 1: the input lives in the job folder (deleted with the job)
    settings TEXT NOT NULL,       -- JSON {option name: value} as submitted
    info TEXT NOT NULL,           -- JSON facts from the probe
    progress TEXT,                -- JSON, see jobs.Progress
    error TEXT,
    result_bytes INTEGER,
    attempts INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state, seq);
"""


@dataclass(frozen=True)
class Job:
    seq: int
    id: str
    state: str
    created: float
    started: float | None
    finished: float | None
    name: str
    input: str
    input_owned: bool
    settings: dict
    info: dict
    progress: dict | None
    error: str | None
    result_bytes: int | None
    attempts: int

    @classmethod
    def from_row(cls, r: sqlite3.Row) -> "Job":
        return cls(seq=r["seq"], id=r["id"], state=r["state"], created=r["created"], started=r["started"],
                   finished=r["finished"], name=r["name"], input=r["input"], input_owned=bool(r["input_owned"]),
                   settings=json.loads(r["settings"]), info=json.loads(r["info"]),
                   progress=json.loads(r["progress"]) if r["progress"] else None, error=r["error"],
                   result_bytes=r["result_bytes"], attempts=r["attempts"])


class JobStore:
    """Thread-safe (one connection behind a lock: the server is one process, writes are rare)."""

    def __init__(self, root):
        self.root = Path(root)
        self.jobs_root = self.root / "jobs"
        self.uploads = self.root / "uploads"
        for d in (self.root, self.jobs_root, self.uploads):
            d.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(self.root / "jobs.sqlite", check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # a 202 means the job is on disk
        self._db.executescript(_SCHEMA)

    def close(self):
        with self._lock:
            self._db.close()

    # --- paths ---------------------------------------------------------------------------------
    def job_dir(self, job_id: str) -> Path:
        return self.jobs_root / job_id

    def result_path(self, job_id: str) -> Path:
        return self.job_dir(job_id) / "result.mp4"

    @staticmethod
    def new_id() -> str:
        return uuid.uuid4().hex

    # --- queries -------------------------------------------------------------------------------
    def get(self, job_id: str) -> Job | None:
        with self._lock:
            r = self._db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return Job.from_row(r) if r else None

    def list(self, limit: int = 1000) -> list:
        with self._lock:
            rows = self._db.execute("SELECT * FROM jobs ORDER BY seq DESC LIMIT ?", (limit,)).fetchall()
        return [Job.from_row(r) for r in rows]

    def counts(self) -> dict:
        with self._lock:
            rows = self._db.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state").fetchall()
        out = {s: 0 for s in STATES}
        out.update({r[0]: r[1] for r in rows})
        return out

    def queue_position(self, job: Job) -> int | None:
        if job.state != "queued":
            return None
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM jobs WHERE state = 'queued' AND seq < ?",
                                    (job.seq,)).fetchone()[0]

    # --- transitions ---------------------------------------------------------------------------
    def add(self, job_id: str, *, name: str, input_path: str, input_owned: bool, settings: dict, info: dict,
            max_queue: int) -> Job | None:
        """Insert a queued job; None when `max_queue` jobs already wait (checked atomically)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                n = self._db.execute("SELECT COUNT(*) FROM jobs WHERE state = 'queued'").fetchone()[0]
                if n >= max_queue:
                    self._db.execute("ROLLBACK")
                    return None
                self._db.execute(
                    "INSERT INTO jobs (id, state, created, name, input, input_owned, settings, info) "
                    "VALUES (?, 'queued', ?, ?, ?, ?, ?, ?)",
                    (job_id, time.time(), name, input_path, int(input_owned), json.dumps(settings), json.dumps(info)))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return self.get(job_id)

    def claim_next(self) -> Job | None:
        """The oldest queued job, now marked running (atomically)."""
        with self._lock:
            r = self._db.execute(
                "UPDATE jobs SET state = 'running', started = ?, attempts = attempts + 1, progress = NULL, "
                "error = NULL WHERE seq = (SELECT MIN(seq) FROM jobs WHERE state = 'queued') RETURNING *",
                (time.time(),)).fetchone()
        return Job.from_row(r) if r else None

    def set_progress(self, job_id: str, progress: dict) -> None:
        with self._lock:
            self._db.execute("UPDATE jobs SET progress = ? WHERE id = ? AND state = 'running'",
                             (json.dumps(progress), job_id))

    def finish(self, job_id: str, state: str, *, error: str | None = None, result_bytes: int | None = None,
               progress: dict | None = None) -> None:
        assert state in FINISHED
        with self._lock:
            self._db.execute("UPDATE jobs SET state = ?, finished = ?, error = ?, result_bytes = ?, "
                             "progress = COALESCE(?, progress) WHERE id = ?",
                             (state, time.time(), error, result_bytes,
                              json.dumps(progress) if progress is not None else None, job_id))

    def requeue(self, job_id: str) -> None:
        with self._lock:
            self._db.execute("UPDATE jobs SET state = 'queued', started = NULL, progress = NULL "
                             "WHERE id = ? AND state = 'running'", (job_id,))

    def cancel_queued(self, job_id: str) -> bool:
        """queued -> cancelled; False when the job was not queued any more (the worker took it)."""
        with self._lock:
            cur = self._db.execute("UPDATE jobs SET state = 'cancelled', finished = ? WHERE id = ? AND "
                                   "state = 'queued'", (time.time(), job_id))
            return cur.rowcount == 1

    def delete(self, job_id: str) -> None:
        """Remove the record and the job's files (never a path-submitted input)."""
        self.delete_files(job_id)
        with self._lock:
            self._db.execute("DELETE FROM jobs WHERE id = ?", (job_id,))

    def delete_files(self, job_id: str) -> None:
        shutil.rmtree(self.job_dir(job_id), ignore_errors=True)

    # --- housekeeping --------------------------------------------------------------------------
    def recover(self) -> dict:
        """Bring the folder and the records back into agreement after a crash or restart."""
        report = {"requeued": 0, "orphans": 0, "partials": 0, "uploads": 0, "missing_input": 0}
        with self._lock:
            report["requeued"] = self._db.execute(
                "UPDATE jobs SET state = 'queued', started = NULL, progress = NULL WHERE state = 'running'").rowcount
            known = {r[0] for r in self._db.execute("SELECT id FROM jobs")}
        for p in self.uploads.iterdir():
            _remove(p)
            report["uploads"] += 1
        for d in self.jobs_root.iterdir():
            if d.name not in known:
                _remove(d)
                report["orphans"] += 1
                continue
            for p in d.glob(".*.partial.*"):  # the encoder's temporary output of a killed run
                _remove(p)
                report["partials"] += 1
        for job in self.list(limit=10 ** 9):
            if job.state == "queued" and not Path(job.input).is_file():
                self.finish(job.id, "failed", error="the input file disappeared while the server was down")
                report["missing_input"] += 1
            elif job.state == "succeeded" and not self.result_path(job.id).is_file():
                self.finish(job.id, "failed", error="the result file disappeared while the server was down")
        return report

    def expire(self, keep_seconds: float, now: float | None = None) -> list:
        """Delete finished jobs (records and files) older than `keep_seconds`; returns their ids."""
        cutoff = (now if now is not None else time.time()) - keep_seconds
        with self._lock:
            ids = [r[0] for r in self._db.execute(
                "SELECT id FROM jobs WHERE state IN ('succeeded', 'failed', 'cancelled') AND finished < ?",
                (cutoff,))]
        for i in ids:
            self.delete(i)
        return ids

    def disk_used(self) -> int:
        """Bytes under the jobs folder (records, inputs, results, uploads in flight)."""
        total = 0
        for p in self.root.rglob("*"):
            try:
                if p.is_file() and not p.is_symlink():
                    total += p.stat().st_size
            except OSError:  # removed while we walked
                pass
        return total


def _remove(p: Path) -> None:
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p, ignore_errors=True)
    else:
        p.unlink(missing_ok=True)
