"""Runs stored jobs through the pool: a few jobs at a time, results written as each item finishes.

The store is the source of truth: a job interrupted by a shutdown stays `running` with its finished
items saved, and `resume()` in the next service picks up exactly the items without a result.
"""
from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from .jobs import JobStore

log = logging.getLogger(__name__)


class JobRunner:
    """Owns the threads that drive jobs; `pool` is a WorkerPool (or anything with its `run`)."""

    def __init__(self, store: JobStore, pool, max_concurrent_jobs: int = 4):
        self.store = store
        self.pool = pool
        self._executor = ThreadPoolExecutor(max_concurrent_jobs, thread_name_prefix="job")
        self._stop = threading.Event()
        self._cancelled: set[str] = set()
        self._lock = threading.Lock()
        self._active: dict[str, object] = {}

    def submit(self, job_id: str) -> None:
        """Queue a stored job to run."""
        with self._lock:
            if job_id in self._active or self._stop.is_set():
                return
            self._active[job_id] = self._executor.submit(self._run, job_id)

    def resume(self) -> list[str]:
        """Queue every unfinished job in the store (after a restart); returns their ids."""
        ids = self.store.unfinished()
        for job_id in ids:
            self.submit(job_id)
        return ids

    def cancel(self, job_id: str):
        """Cancel a job: it stops taking new items; returns the job (None if unknown)."""
        with self._lock:
            self._cancelled.add(job_id)
        return self.store.cancel(job_id)

    def active(self) -> list[str]:
        with self._lock:
            return list(self._active)

    def wait(self, job_id: str, timeout: float) -> bool:
        """Block until the job is no longer running here (or timeout); True if it finished."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.store.get(job_id)
            if job is None or job.status not in ("queued", "running"):
                return True
            time.sleep(0.05)
        return False

    def shutdown(self, wait: bool = True) -> None:
        """Stop driving jobs; unfinished ones stay resumable in the store."""
        self._stop.set()
        self._executor.shutdown(wait=wait, cancel_futures=True)

    def _should_stop(self, job_id: str) -> bool:
        return self._stop.is_set() or job_id in self._cancelled

    def _run(self, job_id: str) -> None:
        try:
            job = self.store.get(job_id)
            if job is None or self._should_stop(job_id):
                return
            if not self.store.set_status(job_id, "running", only_if_active=True):
                return
            finished = self.pool.run(
                job.kind, self.store.pending(job_id), job.params,
                on_result=lambda idx, result: self.store.record_result(job_id, idx, result),
                should_stop=lambda: self._should_stop(job_id),
            )
            if finished:
                self.store.set_status(job_id, "completed", only_if_active=True)
        except Exception as exc:  # the pool itself failed (no workers, Ray gone, stalled): the job says why
            from .pool import JobStalled

            if isinstance(exc, JobStalled):
                log.warning("job %s failed: %s", job_id, exc)
            else:
                log.exception("job %s failed", job_id)
            if not self._stop.is_set():
                self.store.set_status(job_id, "failed", error=f"{type(exc).__name__}: {exc}", only_if_active=True)
        finally:
            with self._lock:
                self._active.pop(job_id, None)
