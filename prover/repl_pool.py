"""A thread-safe pool of REPL processes, each holding one set of imports (LRU by imports).

A worker runs a header's `import` lines once; the rest of a header (opens, variables, options,
lemmas) is elaborated once per worker on top of that, as a separate command, and its
environment reused for every theorem with the same header. Headers that differ only after their
imports therefore share a process and its (slow) import. Workers are replaced after a crash or timeout, recycled after `max_commands` commands
or when their memory grew by more than `max_rss_growth_mb`, and evicted least-recently-used when
a new header needs a slot.
"""
from __future__ import annotations

import itertools
import re
import threading
from collections import OrderedDict
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterator

from .protocol import EnvError
from .repl_process import ReplCrashed, ReplProcess, ReplTimeout
from .repl_protocol import ReplProtocolError

_generations = itertools.count(1)
_MAX_HEADER_ENVS = 256  # per worker; older header environments are re-elaborated if needed again
_PREFIX_LINE = re.compile(r"\s*(import\s.*|--.*)?\s*")


def split_header(header: str) -> tuple[str, str]:
    """(import lines, the rest). Lean needs imports first and in a command without `env`."""
    lines = header.splitlines(keepends=True)
    n = 0
    while n < len(lines) and _PREFIX_LINE.fullmatch(lines[n]):
        n += 1
    imports, rest = "".join(lines[:n]), "".join(lines[n:])
    if re.search(r"^\s*import\s", rest, re.M):  # e.g. after a block comment: keep it all together
        return header, ""
    return imports, rest


class HeaderError(EnvError):
    """The theorem's header (imports, opens, variables) does not elaborate."""


@dataclass
class Worker:
    """One REPL process and the environment id its header elaborated to."""

    header: str  # the import lines this process ran
    process: ReplProcess | None = None
    header_env: int | None = None
    env: int | None = None  # the environment of the current session's full header
    envs: OrderedDict = field(default_factory=OrderedDict)  # rest of a header -> its environment
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
        # False keys processes by the whole header, as Kimina Lean Server does (for comparisons).
        self.split_imports = True
        self._workers: list[Worker] = []
        self._cond = threading.Condition()
        self._closed = False
        self._bad_headers: dict[str, str] = {}  # header -> Lean's errors; deterministic, so not retried
        self.spawned = 0  # processes started so far (for logs and tests)
        self.recycled = 0

    @contextmanager
    def session(self, header: str, prefer: int | None = None) -> Iterator[Worker]:
        """Hold a worker for `header` (the one of generation `prefer` if it still exists).

        `worker.env` is the environment id after the whole header (None: no header at all).
        """
        imports, rest = split_header(header) if self.split_imports else (header, "")
        for key in (header, imports):
            if key in self._bad_headers:
                raise HeaderError(self._bad_headers[key])
        worker = self._acquire(imports, prefer)
        try:
            if worker.process is None:
                self._start(worker)
            worker.env = self._env_for(worker, header, rest)
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
            # In the background: the new header's import need not wait for the old process to exit.
            threading.Thread(target=victim.process.close, daemon=True, name="repl-evict").start()
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

    def _env_for(self, worker: Worker, header: str, rest: str) -> int | None:
        if not rest.strip():
            return worker.header_env
        if rest in worker.envs:
            worker.envs.move_to_end(rest)
            return worker.envs[rest]
        cmd = {"cmd": rest} if worker.header_env is None else {"cmd": rest, "env": worker.header_env}
        resp = worker.process.send(cmd, self.import_timeout)
        if resp.error or resp.errors or resp.env is None:
            detail = resp.error or "; ".join(f"line {m.line}: {m.text}" for m in resp.errors)
            message = f"the header failed to elaborate: {detail}\nheader:\n{header}"
            with self._cond:
                self._bad_headers[header] = message
            raise HeaderError(message)
        worker.envs[rest] = resp.env
        if len(worker.envs) > _MAX_HEADER_ENVS:
            worker.envs.popitem(last=False)
        return resp.env

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
