"""Starting fork server processes, kept free of the sandbox's other imports (pydantic, harness).

`proofcode grade` calls `prestart(n)` first thing, so the servers' own start-up (interpreter,
pre-imports, probing the protections, forking the zygote) overlaps with the grader's imports and
with reading problems and samples; `coder.sandbox.client` adopts them when it needs a server.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

_lock = threading.Lock()
_ready: list[tuple[int, subprocess.Popen, socket.socket]] = []  # (owner pid, server, our end of its socket)


def cores() -> list[int]:
    """The CPUs this process may run on (its affinity: a container's or `taskset`'s share)."""
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return list(range(os.cpu_count() or 1))


# A server replays and keeps its books serially, so concurrent callers get up to one server per core.
MAX_SERVERS = max(1, min(len(cores()), 4))


def spawn() -> tuple[subprocess.Popen, socket.socket]:
    """A new fork server process and this side of its socket (it says hello when it is ready)."""
    parent, child = socket.socketpair()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "PYTHONPATH": _server_path()}
    try:
        proc = subprocess.Popen(
            [sys.executable, "-S", "-m", "coder.sandbox.server", str(child.fileno())],
            pass_fds=(child.fileno(),), stdin=subprocess.DEVNULL, env=env, start_new_session=True,
        )
    finally:
        child.close()
    return proc, parent


def prestart(n: int) -> None:
    """Start `n` fork servers now (not waiting for them), for `take` to hand out later."""
    mine = cores()
    with _lock:
        for _ in range(n - len(_ready)):
            proc, sock = spawn()
            if len(mine) > 1:
                try:
                    os.sched_setaffinity(proc.pid, {mine[-1]})
                except OSError:
                    pass
            _ready.append((os.getpid(), proc, sock))


def take() -> tuple[subprocess.Popen, socket.socket] | None:
    """A prestarted server of this process that is still running, or None."""
    with _lock:
        while _ready:
            owner, proc, sock = _ready.pop(0)
            if owner == os.getpid() and proc.poll() is None:
                return proc, sock
            sock.close()
    return None


def _server_path() -> str:
    """PYTHONPATH of the fork server: this checkout, then this process's import directories (the
    server runs with -S, so site-packages and .pth entries come from here)."""
    here = [str(Path(__file__).resolve().parents[2]), os.environ.get("PYTHONPATH", "")]
    return os.pathsep.join(dict.fromkeys(filter(None, here + [p for p in sys.path[1:] if os.path.isabs(p)
                                                               and os.path.isdir(p)])))
