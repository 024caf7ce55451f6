"""A durable job store in SQLite: jobs, their items, and each item's result written as it finishes.

An item's result is written at most once (`record_result` ignores a second write), so a re-run of
an item whose worker died cannot duplicate it; a restarted service re-runs only items without one.
"""
from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from .registry import kind_of

ACTIVE = ("queued", "running")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY, kind TEXT NOT NULL, status TEXT NOT NULL,
    params TEXT NOT NULL, total INTEGER NOT NULL, done INTEGER NOT NULL DEFAULT 0,
    error TEXT, created REAL NOT NULL, updated REAL NOT NULL, key TEXT
);
CREATE TABLE IF NOT EXISTS items (
    job_id TEXT NOT NULL, idx INTEGER NOT NULL, input TEXT NOT NULL, result TEXT, status TEXT,
    PRIMARY KEY (job_id, idx)
);
"""


@dataclass
class Job:
    """A job's row: `counts` maps an item status (passed, failed, error, ...) to how many."""

    id: str
    kind: str
    status: str  # queued | running | completed | cancelled | failed
    params: dict
    total: int
    done: int
    error: str | None
    created: float
    updated: float
    counts: dict

    def to_dict(self) -> dict:
        return {
            "id": self.id, "kind": self.kind, "status": self.status, "total": self.total,
            "done": self.done, "counts": self.counts, "error": self.error,
            "created": self.created, "updated": self.updated, "params": self.params,
        }


class JobStore:
    """Thread-safe access to one SQLite file (one connection, one lock: SQLite serialises writes anyway)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        if "key" not in {row[1] for row in self._db.execute("PRAGMA table_info(jobs)")}:  # a pre-key database
            self._db.execute("ALTER TABLE jobs ADD COLUMN key TEXT")
        self._db.execute("CREATE INDEX IF NOT EXISTS jobs_key ON jobs (key)")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def create(self, kind: str, items: list[dict], params: dict | None = None, key: str | None = None) -> str:
        """Store a new queued job with its items; returns the job id. `key` names its input (see `find`)."""
        kind_of(kind)  # a registered kind, or ValueError naming them
        job_id = uuid.uuid4().hex
        now = time.time()
        with self._lock, self._db:
            self._db.execute("BEGIN")
            self._db.execute(
                "INSERT INTO jobs (id, kind, status, params, total, created, updated, key) VALUES (?,?,?,?,?,?,?,?)",
                (job_id, kind, "queued", json.dumps(params or {}), len(items), now, now, key),
            )
            self._db.executemany(
                "INSERT INTO items (job_id, idx, input) VALUES (?,?,?)",
                ((job_id, i, json.dumps(item)) for i, item in enumerate(items)),
            )
        return job_id

    def find(self, kind: str, key: str) -> str | None:
        """The newest job of `kind` with input `key` that is queued, running or completed (what a rerun re-attaches to)."""
        with self._lock:
            row = self._db.execute(
                "SELECT id FROM jobs WHERE kind=? AND key=? AND status IN ('queued', 'running', 'completed') "
                "ORDER BY created DESC LIMIT 1", (kind, key)).fetchone()
        return row[0] if row else None

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            row = self._db.execute(
                "SELECT id, kind, status, params, total, done, error, created, updated FROM jobs WHERE id=?",
                (job_id,),
            ).fetchone()
            if row is None:
                return None
            counts = dict(self._db.execute(
                "SELECT status, COUNT(*) FROM items WHERE job_id=? AND status IS NOT NULL GROUP BY status",
                (job_id,),
            ).fetchall())
        return Job(row[0], row[1], row[2], json.loads(row[3]), row[4], row[5], row[6], row[7], row[8], counts)

    def pending(self, job_id: str) -> Iterator[tuple[int, dict]]:
        """(index, input) of the items that have no result yet, in order."""
        with self._lock:
            rows = self._db.execute(
                "SELECT idx, input FROM items WHERE job_id=? AND result IS NULL ORDER BY idx", (job_id,)
            ).fetchall()
        for idx, text in rows:
            yield idx, json.loads(text)

    def record_result(self, job_id: str, idx: int, result: dict) -> bool:
        """Write an item's result unless it already has one; True if this call wrote it."""
        status = str(result.get("status", "done"))
        with self._lock, self._db:
            self._db.execute("BEGIN")
            cur = self._db.execute(
                "UPDATE items SET result=?, status=? WHERE job_id=? AND idx=? AND result IS NULL",
                (json.dumps(result), status, job_id, idx),
            )
            if cur.rowcount != 1:
                return False
            self._db.execute(
                "UPDATE jobs SET done=done+1, updated=? WHERE id=?", (time.time(), job_id)
            )
        return True

    def set_status(self, job_id: str, status: str, error: str | None = None, only_if_active: bool = False) -> bool:
        """Move a job to `status`; with only_if_active, leave cancelled/finished jobs alone."""
        sql = "UPDATE jobs SET status=?, error=COALESCE(?, error), updated=? WHERE id=?"
        if only_if_active:
            sql += " AND status IN ('queued', 'running')"
        with self._lock:
            cur = self._db.execute(sql, (status, error, time.time(), job_id))
        return cur.rowcount == 1

    def cancel(self, job_id: str) -> Job | None:
        """Cancel a queued/running job (finished jobs keep their status); None if unknown."""
        self.set_status(job_id, "cancelled", only_if_active=True)
        return self.get(job_id)

    def delete(self, job_id: str) -> bool:
        """Remove a finished job and its items; False (nothing removed) if it is unknown or still active."""
        with self._lock, self._db:
            self._db.execute("BEGIN")
            cur = self._db.execute(
                "DELETE FROM jobs WHERE id=? AND status NOT IN ('queued', 'running')", (job_id,))
            if cur.rowcount != 1:
                return False
            self._db.execute("DELETE FROM items WHERE job_id=?", (job_id,))
        return True

    def purge(self, older_than_s: float) -> int:
        """Remove finished jobs last updated more than `older_than_s` ago (retention); returns how many."""
        cutoff = time.time() - older_than_s
        with self._lock:
            ids = [r[0] for r in self._db.execute(
                "SELECT id FROM jobs WHERE status NOT IN ('queued', 'running') AND updated < ?", (cutoff,))]
        return sum(self.delete(i) for i in ids)

    def results(self, job_id: str) -> Iterator[dict]:
        """Finished items in index order, each as {"index": i, **input, **result}."""
        with self._lock:
            rows = self._db.execute(
                "SELECT idx, input, result FROM items WHERE job_id=? AND result IS NOT NULL ORDER BY idx",
                (job_id,),
            ).fetchall()
        for idx, inp, res in rows:
            yield {"index": idx, **json.loads(inp), **json.loads(res)}

    def unfinished(self) -> list[str]:
        """Ids of queued or running jobs, oldest first (what a restarted service resumes)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id FROM jobs WHERE status IN ('queued', 'running') ORDER BY created"
            ).fetchall()
        return [r[0] for r in rows]

    def list(self, limit: int = 50) -> list[Job]:
        with self._lock:
            ids = [r[0] for r in self._db.execute(
                "SELECT id FROM jobs ORDER BY created DESC LIMIT ?", (limit,)
            ).fetchall()]
        return [j for j in (self.get(i) for i in ids) if j is not None]


def write_jsonl(rows: Iterable[dict], path: str | Path) -> int:
    """Write rows as JSON lines; returns the count."""
    n = 0
    with open(path, "w") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
            n += 1
    return n
