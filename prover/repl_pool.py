"""A thread-safe pool of REPL processes, each holding one elaborated import header (LRU by header).

A worker imports its header once and answers every theorem with that header from the resulting
environment. Workers are replaced after a crash or timeout, recycled after `max_commands` commands
or when their memory grew by more than `max_rss_growth_mb`, and evicted least-recently-used when
a new header needs a slot.
"""
from __future__ import annotations

import itertools
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterator

from .protocol import EnvError
from .repl_process import ReplCrashed, ReplProcess, ReplTimeout
from .repl_protocol import ReplProtocolError

_generations = itertools.count(1)


class HeaderError(EnvError):
    """The theorem's header (imports, opens, variables) does not elaborate."""


@dataclass
class Worker:
    """One REPL process and the environment id its header elaborated to."""

    header: str
    process: ReplProcess | None = None
    header_env: int | None = None
    base_rss_mb: float | None = None
    generation: int = field(default_factory=lambda: next(_generations))
    busy: bool = True
    warming: bool = False  # a background replacement still importing its header
    broken: bool = False
    last_used: float = field(default_factory=time.monotonic)


class ReplPool:
    """Hands out workers by header. `spawn()` starts a fresh ReplProcess."""

    def __init__(self, spawn: Callable[[], ReplProcess], size: int, import_timeout: float | None,
                 max_commands: int | None = None, max_rss_growth_mb: float | None = None,
                 acquire_timeout: float | None = None, respawn: bool = True):
        if size < 1:
            raise ValueError(f"pool size must be >= 1, got {size}")
        self._spawn = spawn
        self.size = size
        self.import_timeout = import_timeout
        self.max_commands = max_commands
        self.max_rss_growth_mb = max_rss_growth_mb
        self.acquire_timeout = acquire_timeout
        self.respawn = respawn
        self._workers: list[Worker] = []
        self._cond = threading.Condition()
        self._closed = False
        self._bad_headers: dict[str, str] = {}  # header -> Lean's errors; deterministic, so not retried
        self.spawned = 0  # processes started so far (for logs and tests)
        self.recycled = 0

    @contextmanager
    def session(self, header: str, prefer: int | None = None) -> Iterator[Worker]:
        """Hold a worker for `header` (the one of generation `prefer` if it still exists)."""
        worker = self._acquire(header, prefer)
        try:
            if worker.process is None:
                self._start(worker)
            yield worker
        except (ReplTimeout, ReplCrashed, ReplProtocolError):
            worker.broken = True
            raise
        except BaseException:
            if worker.process is None:
                worker.broken = True
            raise
        finally:
            self._release(worker)

    def _acquire(self, header: str, prefer: int | None) -> Worker:
        if header in self._bad_headers:
            raise HeaderError(self._bad_headers[header])
        deadline = None if self.acquire_timeout is None else time.monotonic() + self.acquire_timeout
        victim = None
        with self._cond:
            while True:
                if self._closed:
                    raise EnvError("the REPL pool is closed")
                worker, victim = self._pick(header, prefer)
                if worker is not None:
                    break
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise EnvError(f"all {self.size} REPL processes stayed busy for {self.acquire_timeout:g}s; "
                                   f"raise pool_size or acquire_timeout")
                self._cond.wait(left)
        if victim is not None and victim.process is not None:
            victim.process.close()  # outside the lock: closing waits for the process
        return worker

    def _pick(self, header: str, prefer: int | None) -> tuple[Worker | None, Worker | None]:
        if prefer is not None:
            for w in self._workers:
                if w.generation == prefer:
                    if w.busy:
                        return None, None  # the proof state lives there: wait for it
                    return self._take(w), None
        idle = [w for w in self._workers if not w.busy]
        same = [w for w in idle if w.header == header]
        if same:
            return self._take(max(same, key=lambda w: w.last_used)), None
        if any(w.warming and w.header == header for w in self._workers):
            return None, None  # a replacement for this header is importing: cheaper to wait for it
        if len(self._workers) < self.size:
            worker = Worker(header=header)
            self._workers.append(worker)
            return worker, None
        if idle:
            victim = min(idle, key=lambda w: w.last_used)
            self._workers.remove(victim)
            worker = Worker(header=header)
            self._workers.append(worker)
            return worker, victim
        return None, None

    @staticmethod
    def _take(worker: Worker) -> Worker:
        worker.busy = True
        return worker

    def _start(self, worker: Worker) -> None:
        """Spawn the process and elaborate the header once (the import is the slow part)."""
        worker.process = self._spawn()
        self.spawned += 1
        if worker.header.strip():
            resp = worker.process.send({"cmd": worker.header}, self.import_timeout)
            if resp.error or resp.errors or resp.env is None:
                detail = resp.error or "; ".join(f"line {m.line}: {m.text}" for m in resp.errors)
                worker.broken = True
                message = f"the header failed to elaborate: {detail}\nheader:\n{worker.header}"
                with self._cond:
                    self._bad_headers[worker.header] = message
                raise HeaderError(message)
            worker.header_env = resp.env
        worker.base_rss_mb = worker.process.rss_mb()

    def _release(self, worker: Worker, respawn: bool = True) -> None:
        proc = worker.process
        retire = worker.broken or proc is None or not proc.alive or proc.in_flight or self._closed
        if not retire and self._worn_out(worker):
            retire = True
            self.recycled += 1
        replacement = None
        with self._cond:
            worker.busy = worker.warming = False
            worker.last_used = time.monotonic()
            if retire and worker in self._workers:
                self._workers.remove(worker)
            if (retire and respawn and self.respawn and not self._closed and worker.header not in self._bad_headers
                    and len(self._workers) < self.size):
                replacement = Worker(header=worker.header, warming=True)
                self._workers.append(replacement)
            self._cond.notify_all()
        if retire and worker.process is not None:
            worker.process.close(grace=0.2)
        if replacement is not None:
            # Import the header again in the background, so a timeout or recycling does not make
            # the next command on this header wait for `import Mathlib`.
            threading.Thread(target=self._warm, args=(replacement,), daemon=True,
                             name="repl-respawn").start()

    def _warm(self, worker: Worker) -> None:
        try:
            self._start(worker)
        except Exception:  # reported when a caller needs this header; a failed warm-up is not retried
            worker.broken = True
        finally:
            self._release(worker, respawn=False)

    def _worn_out(self, worker: Worker) -> bool:
        proc = worker.process
        if self.max_commands is not None and proc.commands_run >= self.max_commands:
            return True
        if self.max_rss_growth_mb is not None and worker.base_rss_mb is not None:
            now = proc.rss_mb()
            if now is not None and now - worker.base_rss_mb > self.max_rss_growth_mb:
                return True
        return False

    def alive_workers(self) -> list[tuple[str, int]]:
        """(header, pid) of each running worker, for logs and tests."""
        with self._cond:
            return [(w.header, w.process.pid) for w in self._workers if w.process is not None]

    def close(self) -> None:
        """Stop every process; waits for nothing in flight (callers stop first)."""
        with self._cond:
            self._closed = True
            workers, self._workers = self._workers, []
            self._cond.notify_all()
        for w in workers:
            if w.process is not None:
                w.process.close(grace=0.2)
