"""The fork server: a pre-imported, single-threaded process that forks one confined child per run.

It is the trusted parent: it enforces the wall clock (SIGKILL of the child's process group),
reaps children through pidfds, and decides every verdict; for function tests it replays the
pristine tests against the child's recorded plain-data answers itself (stage 2, see harness). Started by `coder.sandbox.client` as
`python -m coder.sandbox.server FD`; talks length-prefixed pickles over the inherited socket.
It lives in its own network namespace (no interfaces up) when the kernel allows.
"""
from __future__ import annotations

# Pre-imported so that forked children start warm (what solutions commonly import).
import bisect, collections, copy, datetime, decimal, fractions, functools, hashlib  # noqa: E401,F401
import heapq, itertools, math, operator, random, re, statistics, string, typing  # noqa: E401,F401

import contextlib
import ctypes
import fcntl
import gc
import io
import json
import os
import pickle
import selectors
import shutil
import signal
import socket
import struct
import sys
import tempfile
import time
from dataclasses import dataclass

from coder.sandbox import harness, protect

_HEADER = struct.Struct("!I")


def send_msg(sock: socket.socket, obj: object) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    sock.sendall(_HEADER.pack(len(data)) + data)


@dataclass
class _Child:
    job: dict
    stage: str  # "run" | "program"
    pid: int
    pidfd: int
    workdir: str
    fds: tuple[int, int, int]
    started: float
    deadline: float
    done_r: int = -1
    timed_out: bool = False
    early: tuple[bytes, dict] | None = None  # (recording, replay outcome) judged while the child exited


class ForkServer:
    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.protections = protect.probe(protect.enter_network_namespace())
        self.active = [k for k, v in self.protections.items() if v]
        # Memory-backed when possible: every run creates and removes a directory.
        shm = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
        _remove_stale_roots(shm or tempfile.gettempdir())
        self.root = tempfile.mkdtemp(prefix=f"proofcode-sandbox-{os.getpid()}-", dir=shm)
        checkout = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(harness.__file__))))
        self.readable = protect.read_paths(exclude=checkout)
        self.abi = protect.landlock_abi()
        self.is_root = os.geteuid() == 0
        seccomp_bpf = protect.compile_seccomp() if self.protections["seccomp"] else b""
        self.confinement = protect.Confinement(self.readable, self.abi if self.protections["landlock"] else 0,
                                               seccomp_bpf, drop_caps=self.is_root)
        self.sel = selectors.DefaultSelector()
        self.children: dict[int, _Child] = {}  # pidfd -> child
        self.finishing: dict[int, _Child] = {}  # read end of a child's "finished" pipe -> child
        self.buf = b""
        self.count = 0
        self.ready: list[_Ready] = []
        self.pool_size = max(2, min(8, os.cpu_count() or 1))

    # ---- main loop -------------------------------------------------------------------------
    def serve(self) -> None:
        send_msg(self.sock, {"hello": self.protections, "pid": os.getpid()})
        self.sel.register(self.sock, selectors.EVENT_READ)
        try:
            while True:
                now = time.monotonic()
                deadlines = [c.deadline for c in self.children.values() if not c.timed_out]
                timeout = max(0.0, min(deadlines) - now) if deadlines else None
                for key, _ in self.sel.select(timeout):
                    if key.fileobj is self.sock:
                        if not self._read_requests():
                            return
                    elif key.fd in self.finishing:
                        self._replay_early(self.finishing.pop(key.fd))
                    elif key.fd in self.children:
                        self._reap(self.children[key.fd])
                self._enforce_deadlines()
                if not self.children:
                    self._refill()
        finally:
            for child in list(self.children.values()):
                _kill(child.pid)
            for ready in self.ready:
                _discard(ready)
            shutil.rmtree(self.root, ignore_errors=True)

    def _read_requests(self) -> bool:
        data = self.sock.recv(1 << 20)
        if not data:
            return False  # the client process went away
        self.buf += data
        while len(self.buf) >= _HEADER.size:
            (size,) = _HEADER.unpack_from(self.buf)
            if len(self.buf) < _HEADER.size + size:
                break
            job = pickle.loads(self.buf[_HEADER.size: _HEADER.size + size])
            self.buf = self.buf[_HEADER.size + size:]
            try:
                self._start(job)
            except Exception as exc:  # e.g. fork failed: EAGAIN, ENOMEM
                self._finish(job, {"status": "sandbox_error", "detail": f"could not start the run: {exc}"})
        return True

    def _enforce_deadlines(self) -> None:
        now = time.monotonic()
        for child in self.children.values():
            if not child.timed_out and now >= child.deadline:
                child.timed_out = True
                _kill(child.pid)

    # ---- starting runs ---------------------------------------------------------------------
    # Children are forked and confined ahead of time (a small pool of fresh, never-used processes
    # blocked reading their job), so a request only costs a pipe write on the critical path.

    def _start(self, job: dict) -> None:
        while True:
            ready = self.ready.pop() if self.ready else self._prefork()
            try:
                _write_all(ready.job_w, pickle.dumps(job, protocol=pickle.HIGHEST_PROTOCOL))
                break
            except OSError:  # that child died while waiting (e.g. killed by the OOM killer)
                _discard(ready)
            finally:
                os.close(ready.job_w)
        now = time.monotonic()
        stage = "program" if job["kind"] == "program" else "run"
        child = _Child(job, stage, ready.pid, ready.pidfd, ready.workdir, ready.fds, now,
                       now + job["limits"]["timeout_s"], ready.done_r)
        self.children[ready.pidfd] = child
        self.sel.register(ready.pidfd, selectors.EVENT_READ)
        if stage == "run":
            self.finishing[ready.done_r] = child
            self.sel.register(ready.done_r, selectors.EVENT_READ)

    def _refill(self) -> None:
        while len(self.ready) < self.pool_size:
            self.ready.append(self._prefork())

    def _prefork(self) -> "_Ready":
        self.count += 1
        workdir = os.path.join(self.root, f"run-{self.count}")
        os.mkdir(workdir, 0o700)
        # The server keeps its own descriptors of the outputs: whatever the child does to the
        # directory entries (symlinks, renames), the server reads what was written to these.
        fds = tuple(os.open(os.path.join(workdir, name), os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
                    for name in (".stdout", ".stderr", ".record"))
        job_r, job_w = os.pipe()
        done_r, done_w = os.pipe2(os.O_CLOEXEC)
        pid = _fork()
        if pid < 0:
            raise OSError(ctypes.get_errno(), "fork failed")
        if pid == 0:  # child
            try:
                self._confine(workdir, (*fds, job_r, done_w))
                _warm_up()
                _run_job(_read_all(4))
            except BaseException as exc:
                os.write(2, f"sandbox setup failed: {exc}\n".encode())
            os._exit(70)
        os.close(job_r)
        os.close(done_w)
        return _Ready(pid, os.pidfd_open(pid), workdir, job_w, fds, done_r)

    def _confine(self, workdir: str, fds: tuple[int, ...]) -> None:
        """In the child: own process group, Landlock, caps, seccomp; fds 1-5 = stdout, stderr, recording, job, finished."""
        os.setpgid(0, 0)
        protect.die_with_parent()
        self.confinement.apply(workdir)
        os.chdir(workdir)
        high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 1000) for fd in fds]  # out of the way of 0-5
        for target, fd in enumerate(high, start=1):
            os.dup2(fd, target)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.closerange(6, 1 << 16)  # the server's socket, other children's pipes and pidfds, Landlock's
        tempfile.tempdir = workdir  # the environment is already minimal: the client started us with one

    # ---- finishing runs --------------------------------------------------------------------
    def _reap(self, child: _Child) -> None:
        _kill(child.pid)  # its process group, before reaping (so the id cannot have been reused)
        _, status, usage = os.wait4(child.pid, 0)
        self.sel.unregister(child.pidfd)
        os.close(child.pidfd)
        del self.children[child.pidfd]
        if self.finishing.pop(child.done_r, None) is not None:
            self.sel.unregister(child.done_r)
        os.close(child.done_r)
        elapsed = time.monotonic() - child.started
        limits = child.job["limits"]
        out = _read_capped(child.fds[0], limits["max_output_bytes"])
        err = _read_capped(child.fds[1], limits["max_output_bytes"])
        try:
            verdict = self._judge(child, status, usage, out, err)
        except Exception as exc:
            verdict = {"status": "sandbox_error", "detail": f"judging failed: {exc!r}"}
        verdict.setdefault("time_s", round(elapsed, 4))
        if child.job["kind"] == "program" or verdict["status"] != "passed":
            verdict.setdefault("stdout", out[0].decode(errors="replace"))
            verdict.setdefault("stderr", err[0].decode(errors="replace"))
        self._finish(child.job, verdict)
        for fd in child.fds:  # clean-up after the verdict is sent: off the caller's critical path
            os.close(fd)
        shutil.rmtree(child.workdir, ignore_errors=True)
        self._refill()  # after the verdict is sent: forking then does not delay a run in flight

    def _judge(self, child: _Child, status: int, usage, out, err) -> dict:
        limits = child.job["limits"]
        sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else 0
        cpu = usage.ru_utime + usage.ru_stime
        if child.timed_out:
            return {"status": "timeout", "detail": f"exceeded the wall-clock limit of {limits['timeout_s']:g} s"}
        if sig == signal.SIGXCPU or (sig == signal.SIGKILL and cpu >= limits["cpu_time_s"]):
            return {"status": "timeout", "detail": f"exceeded the CPU time limit of {limits['cpu_time_s']:g} s"}
        if out[1] or err[1]:
            return {"status": "output_limit", "detail": f"wrote more than {limits['max_output_bytes']} bytes "
                    f"to {'stdout' if out[1] else 'stderr'}"}
        if sig == signal.SIGXFSZ:
            return {"status": "output_limit", "detail": f"wrote a file over {limits['file_size_mb']} MB"}
        if sig:
            return {"status": "runtime_error", "detail": f"killed by {signal.Signals(sig).name}"}
        code = os.WEXITSTATUS(status)
        if code == 70 and b"sandbox setup failed" in err[0]:
            return {"status": "sandbox_error", "detail": err[0].decode(errors="replace").strip()[-300:]}
        if child.stage == "program":
            return _program_outcome(child.job, code, out[0], err[0])
        recording, too_big = _read_capped(child.fds[2], limits["max_recording_bytes"])
        if too_big:
            return {"status": "output_limit", "detail": f"recorded answers exceed {limits['max_recording_bytes']} bytes"}
        if child.early is not None and child.early[0] == recording and code == 0:
            return child.early[1]  # the recording did not change after the child said it had finished
        return self._replay(child.job, recording, code)

    def _replay_early(self, child: _Child) -> None:
        """The child wrote its last answer and is exiting: replay now, overlapping its exit.

        Only a guess: `_judge` uses it when the recording read after the reap is byte-identical
        and the exit status is 0 (a child that signals early and writes on just gets replayed again).
        """
        self.sel.unregister(child.done_r)
        try:
            said_done = os.read(child.done_r, 1) == b"!"
        except OSError:
            said_done = False
        if not said_done or child.timed_out:
            return
        recording, too_big = _read_capped(child.fds[2], child.job["limits"]["max_recording_bytes"])
        if not too_big:
            try:
                child.early = (recording, self._replay(child.job, recording, 0))
            except Exception:
                child.early = None

    def _replay(self, job: dict, recording: bytes, exit_code: int) -> dict:
        """Stage 2 here, in the trusted server the candidate never touched, under a wall-clock alarm.

        The tests are the problem's (trusted) code; they only see plain data decoded from the recording.
        """
        def alarm(signum, frame):
            raise harness.ReplayTimeout

        previous = signal.signal(signal.SIGALRM, alarm)
        state, cwd = random.getstate(), os.getcwd()
        signal.setitimer(signal.ITIMER_REAL, job["limits"]["timeout_s"])
        try:
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                return harness.replay_recording(recording, job["tests"], job.get("prelude", ""),
                                                job["entry_points"], job["entry_point"], exit_code)
        except harness.ReplayTimeout:
            return {"status": "timeout", "detail": "the tests took longer than the time limit to check the answers"}
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
            random.setstate(state)
            os.chdir(cwd)

    def _finish(self, job: dict, verdict: dict) -> None:
        verdict["protections"] = self.active
        send_msg(self.sock, {"id": job["id"], "verdict": verdict})


def _remove_stale_roots(parent: str) -> None:
    """Run directories left by fork servers that were killed (SIGKILL skips their clean-up)."""
    for name in os.listdir(parent):
        parts = name.split("-")
        if name.startswith("proofcode-sandbox-") and len(parts) >= 4 and parts[2].isdigit():
            if not os.path.exists(f"/proc/{parts[2]}"):
                shutil.rmtree(os.path.join(parent, name), ignore_errors=True)


def _program_outcome(job: dict, code: int, out: bytes, err: bytes) -> dict:
    if code != 0:
        last = err.decode(errors="replace").strip().splitlines()[-1:] or [""]
        kind = "memory_exceeded" if "MemoryError" in last[0] else "runtime_error"
        return {"status": kind, "detail": f"exit status {code}: {last[0][:300]}"}
    expected = job.get("expected_output")
    if expected is None:
        return {"status": "passed", "detail": "exited with status 0"}
    if out.decode(errors="replace").split() == expected.split():
        return {"status": "passed", "detail": "output matches"}
    got = out.decode(errors="replace").strip()[:120]
    return {"status": "failed", "detail": f"output differs from the expected output (got {got!r})"}


@dataclass
class _Ready:
    pid: int
    pidfd: int
    workdir: str
    job_w: int
    fds: tuple[int, int, int]  # stdout, stderr, recording (the server's own descriptors)
    done_r: int  # the child writes b"!" here after its last answer, just before it exits


def _discard(ready: _Ready) -> None:
    _kill(ready.pid)
    os.waitpid(ready.pid, 0)
    for fd in (ready.pidfd, *ready.fds, ready.done_r):
        os.close(fd)
    shutil.rmtree(ready.workdir, ignore_errors=True)


# fork(2) itself rather than os.fork(): os.fork runs Python's at-fork hooks in the child (random
# reseeds itself from /dev/urandom, among others), whose copy-on-write page faults cost each child
# a few hundred microseconds. Safe here because the server has a single thread.
_fork = ctypes.CDLL(None, use_errno=True).fork


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
    os.close(fd)
    return b"".join(chunks)


_WARM_UP = "def _f(a, b=2):\n    return [a, b, {'k': (a, 1.5)}]\nr = _f(1)\n"


def _warm_up() -> None:
    """In a pre-forked child while it waits: run trusted code down the paths every job takes (compile,
    exec, a call, encoding an answer), so their copy-on-write page faults happen before the job, not during it."""
    try:
        ns: dict = {"__name__": "__warm_up__", "__builtins__": __builtins__}
        exec(compile(_WARM_UP, "<warm-up>", "exec"), ns)
        json.dumps({"name": "_f", "args": harness.encode([[1, "a", [2.0]], {}]), "out": harness.encode(ns["r"])})
        pickle.loads(pickle.dumps({"kind": "tests", "limits": {"timeout_s": 1.0}}, protocol=pickle.HIGHEST_PROTOCOL))
    except Exception:
        pass  # only an optimisation


def _run_job(data: bytes) -> None:
    """In a confined child, once its job arrives: apply the job's limits, then run it (never returns)."""
    job = pickle.loads(data)  # written by the server, not by untrusted code
    limits = job["limits"]
    if job["kind"] == "program" and job.get("stdin"):
        fd = os.open(".stdin", os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        _write_all(fd, job["stdin"].encode())
        os.lseek(fd, 0, os.SEEK_SET)
        os.dup2(fd, 0)
        os.close(fd)
    protect.set_rlimits(limits["cpu_time_s"], limits["memory_mb"], limits["file_size_mb"], limits["open_files"])
    if job["kind"] == "program":
        harness.run_program(job["program"])
    harness.run_candidate(job["program"], job["tests"], job["entry_points"], job["entry_point"], 3, done_fd=5)


def _read_capped(fd: int, cap: int) -> tuple[bytes, bool]:
    """The first `cap` bytes written to `fd`, and whether there were more."""
    chunks, got = [], 0
    while got <= cap:
        chunk = os.pread(fd, min(cap + 1 - got, 1 << 20), got)
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    data = b"".join(chunks)
    return data[:cap], len(data) > cap


def _kill(pid: int) -> None:
    for target in (lambda: os.killpg(pid, signal.SIGKILL), lambda: os.kill(pid, signal.SIGKILL)):
        try:
            target()
        except (ProcessLookupError, PermissionError):
            pass


def _site_builtins() -> None:
    """The builtins `site` adds (exit, quit, help...), which programs use: the client starts us with
    -S, so that site's start-up imports (threading, .pth files' modules) do not enlarge every child."""
    import site

    site.setquit()
    site.setcopyright()
    site.sethelper()


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the client's Ctrl-C is for the client
    # Inherited across exec from whatever started the client (Ray workers, job runners): we need
    # SIGCHLD at its default (else children are auto-reaped) and nothing blocked.
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
    _site_builtins()
    sock = socket.socket(fileno=int(sys.argv[1]))
    server = ForkServer(sock)
    gc.freeze()  # children then do not touch (copy) every pre-imported object's page when collecting
    server.serve()


if __name__ == "__main__":
    main()
