"""Starting the fork servers of one `startup.spawn_group`: `python -S -c '...launch()' FD [FD ...]`.

One process imports what runs need, makes the `Setup` every server of this start shares, and forks a
copy per extra socket. Each then forks its zygote before importing the server's own modules
(`coder.sandbox.server`: selectors, socket, tempfile, shutil, pickle): the zygote, and so every run it
forks, does not map them. Each MB a zygote maps costs every run ~55 us, to fork it and to end it.
"""
from __future__ import annotations

# Pre-imported so that forked children start warm (what solutions commonly import). Not hashlib: its
# OpenSSL mappings cost every fork and exit ~0.15 ms, more than the rare solution that imports it saves.
import bisect, collections, copy, datetime, decimal, fractions, functools  # noqa: E401,F401
import heapq, itertools, math, operator, random, re, statistics, string, typing  # noqa: E401,F401

import gc
import os
import signal
import sys

from coder.sandbox import harness, protect, zygote


class Setup:
    """What every fork server of one start shares, prepared once before the first forks the others:
    the network namespace, the protections probed, the confinement (seccomp filters compiled, Landlock's
    paths opened), and the zygotes' warm-up (see `zygote.prepare`)."""

    def __init__(self) -> None:
        protect.raise_open_files_limit()
        self.protections = protect.probe(protect.enter_network_namespace())
        # Memory-backed when possible: every run creates and removes a directory.
        self.shm = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
        checkout = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(harness.__file__))))
        abi = protect.landlock_abi() if self.protections["landlock"] else 0
        self.confinement = protect.Confinement(protect.read_paths(exclude=checkout), abi,
                                               seccomp=self.protections["seccomp"], drop_caps=os.geteuid() == 0)
        zygote.prepare()


def launch() -> None:
    """Serve the first socket; for each other one, a copy of this process forked once the modules are
    imported and the `Setup` made serves it (a second interpreter start, imports and set-up saved)."""
    fds = [int(arg) for arg in sys.argv[1:]]
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the client's Ctrl-C is for the client
    # Inherited across exec from whatever started the client (Ray workers, job runners): we need
    # SIGCHLD at its default (else children are auto-reaped) and nothing blocked.
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
    _site_builtins()
    try:
        setup: Setup | Exception = Setup()
    except Exception as exc:  # each socket's client raises SandboxUnavailable with it
        setup = exc
    # Before collection is turned on: the first one would scan every object the imports made (and,
    # in each copy, write to all their pages). They are never garbage.
    gc.freeze()
    gc.enable()  # off while the modules were imported (see startup._SERVER_MAIN)
    for fd in fds[1:]:
        if os.fork() == 0:
            for other in fds:
                if other != fd:
                    os.close(other)
            os.setsid()  # a session of its own, as the first one's (`subprocess` start_new_session)
            _serve(fd, setup)
            os._exit(0)
        os.close(fd)
    _serve(fds[0], setup)


def _serve(fd: int, setup: Setup | Exception) -> None:
    """Fork this server's zygote, then import the server and serve socket `fd`."""
    started: tuple | Exception = setup
    if isinstance(setup, Setup):
        try:
            started = zygote.start(setup.confinement, keep=(0, 1, 2))
        except Exception as exc:  # the client raises SandboxUnavailable with it
            started = exc
        for held in setup.confinement.descriptors():  # the zygote has them; the server needs none
            os.close(held)
    gc.disable()  # as for the other imports: they make only lasting objects (`server.main` freezes them)
    from coder.sandbox import server

    gc.enable()
    server.main(fd, setup, started)


def _site_builtins() -> None:
    """The builtins `site` adds (exit, quit, help...), which programs use: the client starts us with
    -S, so that site's start-up imports (threading, .pth files' modules) do not enlarge every child."""
    import site

    site.setquit()
    site.setcopyright()
    site.sethelper()
