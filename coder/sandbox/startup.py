"""Starting fork server processes, kept free of the sandbox's other imports (pydantic, harness).

`proofcode grade` calls `prestart(n)` first thing, so the servers' own start-up (interpreter,
pre-imports, probing the protections, forking the zygote) overlaps with the grader's imports and
with reading problems and samples; `coder.sandbox.client` adopts them when it needs a server.
"""
from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

_lock = threading.Lock()
_ready: list[tuple[int, subprocess.Popen, socket.socket]] = []  # (owner pid, server, our end of its socket)
_yielded: tuple[set[int], set[int]] | None = None  # (this process's cores, the caller's while servers start)


def cores() -> list[int]:
    """The CPUs this process may run on (its affinity: a container's or `taskset`'s share)."""
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return list(range(os.cpu_count() or 1))


# A server replays and keeps its books serially, so concurrent callers get up to one server per core.
MAX_SERVERS = max(1, min(len(cores()), 4))


# -c rather than -m: running a module as __main__ imports runpy and importlib.util (~4 ms of each
# server's start-up) and would leave the server's own module as every run's `__main__`. Its imports
# make only lasting objects, so it collects none while importing (~2 ms); `main` turns collection on.
_SERVER_MAIN = "import gc; gc.disable(); from coder.sandbox.launch import launch; launch()"


def spawn() -> tuple[subprocess.Popen, socket.socket]:
    """A new fork server process and this side of its socket (it says hello when it is ready)."""
    return spawn_group(1)[0]


def spawn_group(n: int) -> list[tuple[subprocess.Popen | Forked, socket.socket]]:
    """`n` new fork servers from one interpreter start: the process started serves the first socket and
    forks, once its modules are imported, a copy for each other one (`launch.launch`); this side of each
    socket (each server says hello when it is ready)."""
    pairs = [socket.socketpair() for _ in range(n)]
    ends = [child.fileno() for _, child in pairs]
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "PYTHONPATH": _server_path()}
    try:
        proc = subprocess.Popen([sys.executable, "-S", "-c", _SERVER_MAIN, *map(str, ends)], pass_fds=ends,
                                stdin=subprocess.DEVNULL, env=env, start_new_session=True)
    except BaseException:
        for parent, _ in pairs:
            parent.close()
        raise
    finally:
        for _, child in pairs:
            child.close()
    return [(proc if i == 0 else Forked(), parent) for i, (parent, _) in enumerate(pairs)]


class Forked:
    """A server forked by the first of its group: not this process's child, so it is watched through a
    pidfd, opened when its hello gives its pid (`attach`); `poll`, `wait`, `kill` and `pid` as Popen's."""

    def __init__(self) -> None:
        self.pid: int | None = None
        self._pidfd: int | None = None

    def attach(self, pid: int) -> None:
        # It has just said hello and only exits when its socket closes: the pid cannot be recycled yet.
        self.pid, self._pidfd = pid, os.pidfd_open(pid)

    def poll(self) -> int | None:
        """None while it runs; 0 once it has exited (its status belongs to its parent)."""
        return 0 if self._pidfd is not None and _readable(self._pidfd, 0) else None

    def wait(self, timeout: float | None = None) -> int:
        if self._pidfd is not None and not _readable(self._pidfd, timeout):
            raise subprocess.TimeoutExpired(f"fork server {self.pid}", timeout)
        return 0

    def kill(self) -> None:
        if self._pidfd is not None:
            try:
                signal.pidfd_send_signal(self._pidfd, signal.SIGKILL)
            except OSError:  # already gone
                pass


def prestart(n: int) -> None:
    """Start `n` fork servers now (not waiting for them), on this process's last core, for `take` to hand
    out later: their start-up then overlaps with the grader's imports, which keep off that core until
    `release` (left to the scheduler, the grader ran there for tens of ms while the other core idled)."""
    global _yielded
    with _lock:
        want = n - sum(owner == os.getpid() for owner, _, _ in _ready)
        if want <= 0:
            return
        group = spawn_group(want)
        mine = cores()
        if len(mine) > 1:  # before it forks the others: they inherit it
            try:
                os.sched_setaffinity(group[0][0].pid, {mine[-1]})
                os.sched_setaffinity(0, set(mine[:-1]))  # this thread, and those it starts
                _yielded = (set(mine), set(mine[:-1]))
            except OSError:
                pass
        _ready.extend((os.getpid(), proc, sock) for proc, sock in group)


def release() -> None:
    """Give this process's threads back the cores `prestart` kept them off (once a server is taken)."""
    global _yielded
    with _lock:
        if _yielded is None:
            return
        (mine, kept), _yielded = _yielded, None
        for tid in os.listdir("/proc/self/task"):
            try:
                if os.sched_getaffinity(int(tid)) == kept:
                    os.sched_setaffinity(int(tid), mine)
            except OSError:  # exited meanwhile
                pass


def take(ready_only: bool = False) -> tuple[subprocess.Popen | Forked, socket.socket] | None:
    """A prestarted server of this process that is still running (with `ready_only`, one that has already
    said hello), or None."""
    with _lock:
        for entry in list(_ready):
            owner, proc, sock = entry
            if owner != os.getpid() or proc.poll() is not None:
                _ready.remove(entry)
                sock.close()
            elif not ready_only or _readable(sock, 0):
                _ready.remove(entry)
                return proc, sock
    return None


def starting() -> bool:
    """Whether a prestarted server of this process is still starting (not yet taken)."""
    with _lock:
        return any(owner == os.getpid() for owner, _, _ in _ready)


def _readable(fd, timeout_s: float | None) -> bool:
    """Whether `fd` (a socket: hello or end of file; a pidfd: exited) is readable, waiting up to
    `timeout_s` (None: until it is); poll, not select, which refuses descriptors above 1023."""
    poller = select.poll()
    try:
        poller.register(fd, select.POLLIN)
        return bool(poller.poll(None if timeout_s is None else timeout_s * 1000))
    except (OSError, ValueError):  # closed meanwhile
        return True


def _server_path() -> str:
    """PYTHONPATH of the fork server: this checkout, then this process's import directories (the
    server runs with -S, so site-packages and .pth entries come from here)."""
    here = [str(Path(__file__).resolve().parents[2]), os.environ.get("PYTHONPATH", "")]
    return os.pathsep.join(dict.fromkeys(filter(None, here + [p for p in sys.path[1:] if os.path.isabs(p)
                                                               and os.path.isdir(p)])))
