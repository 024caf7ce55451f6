"""A small persistent pool of checker processes with per-call timeouts that work in any thread.

Each worker is a `python -m coder.math.worker` subprocess spoken to over pipes. A call that runs
past its timeout kills that worker (SIGKILL) and starts a replacement, so one pathological answer
costs one process start, and a normal check costs a pipe round trip (~ms).
"""
from __future__ import annotations

import atexit
import json
import os
import select
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

_REPO_ROOT = str(Path(__file__).resolve().parents[2])
DEFAULT_SIZE = max(2, min(4, os.cpu_count() or 2))  # each worker holds sympy (~100 MB)


class WorkerTimeout(Exception):
    """The check ran past its timeout; the worker was killed."""


class WorkerFailed(Exception):
    """The worker could not start or died; the message says how."""


class _Worker:
    def __init__(self, memory_mb: int):
        self._stderr = tempfile.TemporaryFile()  # read back only to explain a crash
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (_REPO_ROOT, env.get("PYTHONPATH")) if p)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "coder.math.worker", "--memory-mb", str(memory_mb)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr,
            env=env, close_fds=True,
        )
        self.ready = False
        self._buf = b""

    def _read_line(self, deadline: float, what: str) -> dict:
        fd = self.proc.stdout.fileno()
        poller = select.poll()  # not select.select: busy services have fds above FD_SETSIZE
        poller.register(fd, select.POLLIN | select.POLLHUP)
        while b"\n" not in self._buf:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WorkerTimeout(what)
            if poller.poll(max(1, int(min(remaining, 3600.0) * 1000))):  # timeout=inf is allowed
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    raise WorkerFailed(f"checker worker exited (code {self.proc.wait()}) during {what}"
                                       + self._stderr_tail())
                self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        try:
            return json.loads(line)
        except ValueError:
            raise WorkerFailed(f"checker worker sent a malformed reply during {what}: {line[:200]!r}") from None

    def request(self, payload: dict, timeout: float, start_timeout: float) -> dict:
        if not self.ready:  # the start-up (python + sympy import) is not charged to the check
            try:
                self._read_line(time.monotonic() + start_timeout, "start-up")
            except WorkerTimeout:
                raise WorkerFailed(f"checker worker did not start within {start_timeout:g} s "
                                   "(machine overloaded? raise start_timeout)") from None
            self.ready = True
        try:
            self.proc.stdin.write(json.dumps(payload).encode() + b"\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError) as exc:
            raise WorkerFailed(f"checker worker is gone ({exc})") from None
        return self._read_line(time.monotonic() + timeout, "the check")

    def _stderr_tail(self) -> str:
        try:
            self._stderr.seek(0)
            tail = self._stderr.read()[-600:].decode(errors="replace").strip()
        except (OSError, ValueError):
            return ""
        return f": {tail}" if tail else ""

    def kill(self) -> None:
        self.proc.kill()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        for pipe in (self.proc.stdin, self.proc.stdout, self._stderr):
            try:
                pipe.close()
            except OSError:
                pass


class CheckerPool:
    """Up to `size` checker processes, started lazily, shared safely by any number of threads."""

    def __init__(self, size: int = DEFAULT_SIZE, memory_mb: int = 2048, start_timeout: float = 60.0):
        if size < 1:
            raise ValueError(f"CheckerPool size must be >= 1, got {size}")
        self.size, self.memory_mb, self.start_timeout = size, memory_mb, start_timeout
        self.pid = os.getpid()
        self._cond = threading.Condition()
        self._idle: list[_Worker] = []
        self._count = 0
        self._closed = False

    def call(self, payload: dict, timeout: float) -> dict:
        """Run one request; raises WorkerTimeout after `timeout` s of checking, WorkerFailed on a crash."""
        worker = self._acquire()
        healthy = False
        try:
            result = worker.request(payload, timeout, self.start_timeout)
            healthy = True
            return result
        finally:
            self._release(worker, healthy)

    def _acquire(self) -> _Worker:
        with self._cond:
            while True:
                if self._closed:
                    raise WorkerFailed("the checker pool was closed")
                if self._idle:
                    return self._idle.pop()
                if self._count < self.size:
                    self._count += 1
                    break
                self._cond.wait()
        try:
            return _Worker(self.memory_mb)
        except BaseException:
            with self._cond:
                self._count -= 1
                self._cond.notify()
            raise

    def _release(self, worker: _Worker, healthy: bool) -> None:
        if healthy:
            with self._cond:
                if not self._closed:
                    self._idle.append(worker)
                    self._cond.notify()
                    return
        worker.kill()
        with self._cond:
            self._count -= 1
            self._cond.notify()
        if healthy:
            return
        try:  # replace it now, so the next check finds a worker already importing sympy
            with self._cond:
                if self._closed or self._count >= self.size:
                    return
                self._count += 1
            replacement = _Worker(self.memory_mb)
        except OSError:
            with self._cond:
                self._count -= 1
            return
        with self._cond:
            self._idle.append(replacement)
            self._cond.notify()

    def close(self) -> None:
        """Stop all idle workers; busy ones are stopped when their call returns."""
        with self._cond:
            self._closed = True
            idle, self._idle = self._idle, []
            self._count -= len(idle)
            self._cond.notify_all()
        for worker in idle:
            worker.kill()


_POOL: CheckerPool | None = None
_POOL_LOCK = threading.Lock()


def default_pool() -> CheckerPool:
    """The process-wide pool (a forked child gets its own: pipes are not shareable across forks)."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None or _POOL.pid != os.getpid():
            _POOL = CheckerPool()
        return _POOL


@atexit.register
def _close_default_pool() -> None:
    if _POOL is not None and _POOL.pid == os.getpid():
        _POOL.close()
