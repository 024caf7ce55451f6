"""Starting fork server processes, kept free of the sandbox's other imports (pydantic, harness).

`proofcode grade` calls `prestart(n)` first thing, so the servers' own start-up (interpreter,
pre-imports, probing the protections, forking the zygote) overlaps with the grader's imports and
with reading problems and samples; `coder.sandbox.client` adopts them when it needs a server.
"""
from __future__ import annotations

import os
import select
import socket
import subprocess
import sys
import threading
from pathlib import Path

_lock = threading.Lock()
_ready: list[tuple[int, subprocess.Popen, socket.socket]] = []  # (owner pid, server, our end of its socket)
_coming = [0, os.getpid()]  # servers `prestart` will still spawn, and for which process
_FIRST_WAIT_S = 60.0  # the others start after the first said hello, or after this long anyway


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
_SERVER_MAIN = "import gc; gc.disable(); from coder.sandbox.server import main; main()"


def spawn() -> tuple[subprocess.Popen, socket.socket]:
    """A new fork server process and this side of its socket (it says hello when it is ready)."""
    parent, child = socket.socketpair()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "PYTHONPATH": _server_path()}
    try:
        proc = subprocess.Popen(
            [sys.executable, "-S", "-c", _SERVER_MAIN, str(child.fileno())],
            pass_fds=(child.fileno(),), stdin=subprocess.DEVNULL, env=env, start_new_session=True,
        )
    finally:
        child.close()
    return proc, parent


def prestart(n: int) -> None:
    """Start `n` fork servers (not waiting for them), for `take` to hand out later: the first now, the
    others once the first is ready, so that it starts without sharing its core and the grader can use
    it while they start (`take(ready_only=True)`)."""
    with _lock:
        _forget_inherited()
        want = n - sum(owner == os.getpid() for owner, _, _ in _ready) - _coming[0]
        if want <= 0:
            return
        proc, sock = _spawn_pinned()
        _ready.append((os.getpid(), proc, sock))
        if want > 1:
            _coming[:] = [_coming[0] + want - 1, os.getpid()]
            threading.Thread(target=_spawn_after, args=(sock, want - 1), name="sandbox-prestart", daemon=True).start()


def _spawn_after(first: socket.socket, n: int) -> None:
    """Spawn `n` more servers once `first` has said hello (or failed): polling leaves its message unread."""
    _readable(first, _FIRST_WAIT_S)
    for _ in range(n):
        try:
            proc, sock = _spawn_pinned()
            with _lock:
                _ready.append((os.getpid(), proc, sock))
        except OSError:
            pass  # e.g. EAGAIN: the client starts one itself when it needs it
        finally:
            with _lock:
                _coming[0] -= 1


def _spawn_pinned() -> tuple[subprocess.Popen, socket.socket]:
    """`spawn`, on this process's last core: its start-up then leaves the other cores to the grader."""
    proc, sock = spawn()
    mine = cores()
    if len(mine) > 1:
        try:
            os.sched_setaffinity(proc.pid, {mine[-1]})
        except OSError:
            pass
    return proc, sock


def _forget_inherited() -> None:
    """Prestarted servers belong to the process that started them, not to a child it forked."""
    if _coming[1] != os.getpid():
        _coming[:] = [0, os.getpid()]


def take(ready_only: bool = False) -> tuple[subprocess.Popen, socket.socket] | None:
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


def _readable(sock: socket.socket, timeout_s: float) -> bool:
    """Whether `sock` has something to read (hello, or end of file), waiting up to `timeout_s`; poll, not
    select, which refuses descriptors above 1023."""
    poller = select.poll()
    try:
        poller.register(sock, select.POLLIN)
        return bool(poller.poll(timeout_s * 1000))
    except (OSError, ValueError):  # closed meanwhile
        return True


def starting() -> bool:
    """Whether a prestarted server of this process is still starting (not yet taken)."""
    with _lock:
        _forget_inherited()
        return _coming[0] > 0 or any(owner == os.getpid() for owner, _, _ in _ready)


def _server_path() -> str:
    """PYTHONPATH of the fork server: this checkout, then this process's import directories (the
    server runs with -S, so site-packages and .pth entries come from here)."""
    here = [str(Path(__file__).resolve().parents[2]), os.environ.get("PYTHONPATH", "")]
    return os.pathsep.join(dict.fromkeys(filter(None, here + [p for p in sys.path[1:] if os.path.isabs(p)
                                                               and os.path.isdir(p)])))
