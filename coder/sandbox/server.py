"""The fork server: a pre-imported, single-threaded process that runs each job in a fresh confined child.

It is the trusted judge: it enforces the wall clock (SIGKILL through the child's pidfd) and decides
every verdict; for function tests it replays the pristine tests against the child's recorded
plain-data answers itself (stage 2, see harness). The children are forked by the zygote, a process
this server forks once at start-up (see zygote: it keeps this server's pages out of every fork).
Started by `coder.sandbox.launch` (one process, a server per socket), which forks the zygote before
it imports this module; talks length-prefixed pickles over the inherited socket. It lives in its own
network namespace (no interfaces up) when the kernel allows.
"""
from __future__ import annotations

import contextlib
import gc
import io
import os
import pickle
import random
import selectors
import shutil
import signal
import socket
import struct
import sys
import tempfile
import time
from typing import TYPE_CHECKING

from coder.sandbox import harness, zygote

if TYPE_CHECKING:
    from coder.sandbox.launch import Setup

_HEADER = struct.Struct("!I")
_MAX_ZOMBIES = 4
_MAX_BATCH = 32  # children per fork request: 5 descriptors each, under SCM_RIGHTS' limit of 253
_OUTPUTS = (".stdout", ".stderr", ".record")  # files in each run's directory, opened by the server
_IDLE_S = 0.05


def send_msg(sock: socket.socket, obj: object) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    sock.sendall(_HEADER.pack(len(data)) + data)


class _Child:
    """A forked child: waiting for a job in the pool (`job` None), or running one. (A plain class: the
    `dataclasses` module and the `inspect` it imports would add ~5 ms to every fork server's start.)"""

    __slots__ = ("pid", "pidfd", "workdir", "job_w", "fds", "done_r", "job", "stage", "started", "deadline",
                 "timed_out", "early")

    def __init__(self, pid: int, pidfd: int, workdir: str, job_w: int, fds: tuple[int, int, int], done_r: int):
        self.pid, self.pidfd, self.workdir, self.job_w = pid, pidfd, workdir, job_w
        self.fds = fds  # stdout, stderr, recording (the server's own descriptors)
        self.done_r = done_r  # the child writes b"!" here after its last answer, just before it exits
        self.job: dict | None = None
        self.stage = "run"  # "run" | "program"
        self.started = self.deadline = 0.0
        self.timed_out = False
        self.early: tuple[bytes, dict] | None = None  # (recording, replay outcome) judged while the child exited


class ForkServer:
    def __init__(self, sock: socket.socket, setup: Setup, started: tuple[int, object]):
        """Serve `sock` with `setup`'s protections and the zygote `started` (its pid and socket, see `launch`)."""
        self.sock = sock
        self.protections = setup.protections
        self.active = [k for k, v in self.protections.items() if v]
        _remove_stale_roots(setup.shm or tempfile.gettempdir())
        self.root = tempfile.mkdtemp(prefix=f"proofcode-sandbox-{os.getpid()}-", dir=setup.shm)
        self.zygote_pid, self.zygote = started
        self.sel = selectors.DefaultSelector()
        self.running: dict[int, _Child] = {}  # pid -> child with a job
        self.pool: list[_Child] = []  # confined children waiting for a job
        self.forking: dict[int, list[tuple]] = {}  # token -> [(workdir, job_w, fds, done_r)] asked of the zygote
        self.n_forking = 0
        self.finishing: dict[int, _Child] = {}  # read end of a child's "finished" pipe -> child
        self.exits: dict[int, _Child] = {}  # pidfd -> child (pooled or running)
        self.zombies: list[int] = []  # exited children, judged, for the zygote to reap
        self.queue: list[dict] = []  # jobs waiting for a child
        self.buf = b""
        self.count = 0
        # Refilled in batches (see zygote) from below `pool_low` up to `pool_size` idle children.
        self.pool_low = max(2, min(4, os.cpu_count() or 1))
        self.pool_size = 2 * self.pool_low

    # ---- main loop -------------------------------------------------------------------------
    def serve(self) -> None:
        send_msg(self.sock, {"hello": self.protections, "pid": os.getpid(), "zygote": self.zygote_pid})
        self.sel.register(self.sock, selectors.EVENT_READ)
        self.sel.register(self.zygote, selectors.EVENT_READ)
        self._refill()
        try:
            while True:
                now = time.monotonic()
                deadlines = [c.deadline for c in self.running.values() if not c.timed_out]
                timeout = max(0.0, min(deadlines) - now) if deadlines else None
                if self.zombies:
                    timeout = min(timeout, _IDLE_S) if timeout is not None else _IDLE_S
                events = self.sel.select(timeout)
                if not events and self.zombies:
                    self._reap_zombies()
                for key, _ in events:
                    if key.fileobj is self.sock:
                        if not self._read_requests():
                            return
                    elif key.fileobj is self.zygote:
                        if not self._zygote_event():
                            return
                    # Identity, not just the number: an earlier event of this batch may have closed
                    # the descriptor and a new child reused its number.
                    elif self.finishing.get(key.fd) is key.data is not None:
                        self._replay_early(self.finishing.pop(key.fd))
                    elif self.exits.get(key.fd) is key.data is not None:
                        self._exited(self.exits.pop(key.fd))
                self._enforce_deadlines()
        finally:
            self._shut_down()

    def _read_requests(self) -> bool:
        data = self.sock.recv(1 << 20)
        if not data:
            return False  # the client process went away
        self.buf += data
        while len(self.buf) >= _HEADER.size:
            (size,) = _HEADER.unpack_from(self.buf)
            if len(self.buf) < _HEADER.size + size:
                break
            self.queue.append(pickle.loads(self.buf[_HEADER.size: _HEADER.size + size]))
            self.buf = self.buf[_HEADER.size + size:]
        self._dispatch()
        return True

    def _zygote_event(self) -> bool:
        event = zygote.read_event(self.zygote, _MAX_BATCH)
        if event is None:
            return False  # the zygote died: so will its children (parent-death signal); the client restarts us
        token, forked, error = event
        asked = self.forking.pop(token)
        self.n_forking -= len(asked)
        for (pid, pidfd), resources in zip(forked, asked):
            child = _Child(pid, pidfd, *resources)
            self.pool.append(child)
            self.exits[pidfd] = child
            self.sel.register(pidfd, selectors.EVENT_READ, child)
        for resources in asked[len(forked):]:
            _clean_up(*resources)
        if error and self.queue and not self.pool:  # e.g. EAGAIN: fail a waiting job rather than retry forever
            job = self.queue.pop(0)
            self._finish(job, {"status": "sandbox_error", "detail": f"could not start the run: fork: {error}"})
        self._dispatch()
        return True

    def _exited(self, child: _Child) -> None:
        """A child's pidfd says it exited: judge it (its exit status is read while it is a zombie)."""
        self.sel.unregister(child.pidfd)
        try:
            status, cpu = zygote.exit_status(child.pid)
        except (OSError, ValueError, IndexError) as exc:
            status, cpu = None, repr(exc)
        self.zombies.append(child.pid)
        if self.running.pop(child.pid, None) is child:
            self._reap(child, status, cpu)
        else:  # died before its job started (say, the OOM killer)
            if child in self.pool:
                self.pool.remove(child)
            _discard(child)
        self._refill()
        if len(self.zombies) >= _MAX_ZOMBIES:
            self._reap_zombies()

    def _reap_zombies(self) -> None:
        """Zombies are reaped with the next fork request, or here when they pile up or the server idles."""
        zygote.request_reap(self.zygote, self.zombies)
        self.zombies = []

    def _enforce_deadlines(self) -> None:
        now = time.monotonic()
        for child in self.running.values():
            if not child.timed_out and now >= child.deadline:
                child.timed_out = True
                _kill(child)

    def _shut_down(self) -> None:
        for child in [*self.running.values(), *self.pool]:
            _kill(child)
        self.zygote.close()  # the zygote exits on end of file; its children die with it
        try:
            os.kill(self.zygote_pid, signal.SIGKILL)
            os.waitpid(self.zygote_pid, 0)
        except OSError:
            pass
        shutil.rmtree(self.root, ignore_errors=True)

    # ---- starting runs ---------------------------------------------------------------------
    # Children are forked and confined ahead of time (a small pool of fresh, never-used processes
    # blocked reading their job), so a request only costs a pipe write on the critical path.

    def _dispatch(self) -> None:
        """Hand queued jobs to pooled children; ask the zygote for more children as needed."""
        while self.queue and self.pool:
            job, child = self.queue.pop(0), self.pool.pop()
            try:
                self._start(job, child)
            except Exception as exc:
                self._finish(job, {"status": "sandbox_error", "detail": f"could not start the run: {exc}"})
        if self.queue:
            self._refill()

    def _start(self, job: dict, child: _Child) -> None:
        try:
            zygote.write_all(child.job_w, pickle.dumps(job, protocol=pickle.HIGHEST_PROTOCOL))
        except OSError:  # that child died while waiting: put the job back for the next one
            _kill(child)  # its pidfd reports the exit; clean-up happens there
            self.queue.insert(0, job)
            return
        finally:
            os.close(child.job_w)
            child.job_w = -1
        now = time.monotonic()
        child.job, child.stage = job, "program" if job["kind"] == "program" else "run"
        child.started, child.deadline = now, now + job["limits"]["timeout_s"]
        self.running[child.pid] = child
        if child.stage == "run":
            self.finishing[child.done_r] = child
            self.sel.register(child.done_r, selectors.EVENT_READ, child)

    def _refill(self) -> None:
        have = len(self.pool) + self.n_forking
        if have < self.pool_low + len(self.queue):
            try:
                self._request_children(min(_MAX_BATCH, self.pool_size + len(self.queue) - have))
            except OSError as exc:  # e.g. EMFILE, ENOSPC: fail what waits rather than the server
                if not self.pool and not self.n_forking:
                    for job in self.queue:
                        self._finish(job, {"status": "sandbox_error", "detail": f"could not start the run: {exc}"})
                    self.queue = []

    def _request_children(self, n: int) -> None:
        runs = []
        try:
            for _ in range(n):
                runs.append(self._new_run_dir())
            self.count += 1
            zygote.request_fork(self.zygote, self.count, [(r[0], (*r[2], r[4], r[5])) for r in runs], self.zombies)
            self.zombies = []
        except OSError:
            for workdir, job_w, fds, done_r, _, _ in runs:
                _clean_up(workdir, job_w, fds, done_r)
            raise
        finally:
            for *_, job_r, done_w in runs:  # the zygote has them now
                os.close(job_r)
                os.close(done_w)
        self.forking[self.count] = [r[:4] for r in runs]
        self.n_forking += n

    def _new_run_dir(self) -> tuple:
        """(workdir, job_w, (stdout, stderr, recording), done_r, job_r, done_w) for one child."""
        self.count += 1
        workdir = os.path.join(self.root, f"run-{self.count}")
        os.mkdir(workdir, 0o700)
        # The server keeps its own descriptors of the outputs: whatever the child does to the
        # directory entries (symlinks, renames), the server reads what was written to these.
        fds = tuple(os.open(os.path.join(workdir, name), os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
                    for name in _OUTPUTS)
        job_r, job_w = os.pipe2(os.O_CLOEXEC)
        done_r, done_w = os.pipe2(os.O_CLOEXEC)
        return workdir, job_w, fds, done_r, job_r, done_w

    # ---- finishing runs --------------------------------------------------------------------
    def _reap(self, child: _Child, status: int | None, cpu: float | str) -> None:
        if self.finishing.pop(child.done_r, None) is not None:
            self.sel.unregister(child.done_r)
        elapsed = time.monotonic() - child.started
        limits = child.job["limits"]
        out = _read_capped(child.fds[0], limits["max_output_bytes"])
        err = _read_capped(child.fds[1], limits["max_output_bytes"])
        try:
            if status is None:
                raise RuntimeError(f"could not read the run's exit status: {cpu}")
            verdict = self._judge(child, status, cpu, out, err)
        except Exception as exc:
            verdict = {"status": "sandbox_error", "detail": f"judging failed: {exc!r}"}
        verdict.setdefault("time_s", round(elapsed, 4))
        if child.job["kind"] == "program" or verdict["status"] != "passed":
            verdict.setdefault("stdout", out[0].decode(errors="replace"))
            verdict.setdefault("stderr", err[0].decode(errors="replace"))
        self._finish(child.job, verdict)
        _discard(child)  # clean-up after the verdict is sent: off the caller's critical path

    def _judge(self, child: _Child, status: int, cpu: float, out, err) -> dict:
        limits = child.job["limits"]
        sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else 0
        if child.timed_out:
            return {"status": "timeout", "detail": f"exceeded the wall-clock limit of {limits['timeout_s']:g} s"}
        if sig == signal.SIGXCPU or (sig == signal.SIGKILL and cpu >= limits["cpu_time_s"]):
            return {"status": "timeout", "detail": f"exceeded the CPU time limit of {limits['cpu_time_s']:g} s"}
        # A test run's output is only shown, so a lot of it is fine; up to the file size limit, which
        # Python meets with EFBIG (it ignores SIGXFSZ).
        if any(os.fstat(fd).st_size >= limits["file_size_mb"] << 20 for fd in child.fds[:2]):
            return {"status": "output_limit", "detail": f"wrote {limits['file_size_mb']} MB or more to stdout or stderr"}
        if (out[1] or err[1]) and child.stage == "program":
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
        state, cwd, depth = random.getstate(), os.getcwd(), sys.getrecursionlimit()
        signal.setitimer(signal.ITIMER_REAL, job["limits"]["timeout_s"])
        try:
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                return harness.replay_recording(recording, job["tests"], job.get("prelude", ""),
                                                job["entry_points"], job["entry_point"], exit_code,
                                                job.get("tests_code"), job.get("options"))
        except harness.ReplayTimeout:
            return {"status": "timeout", "detail": "the tests took longer than the time limit to check the answers"}
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
            random.setstate(state)
            os.chdir(cwd)
            sys.setrecursionlimit(depth)  # the replay's headroom, or a prompt's own setting

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


def _discard(child: _Child) -> None:
    """Release what the server holds for a child that has exited or been killed."""
    os.close(child.pidfd)
    _clean_up(child.workdir, child.job_w, child.fds, child.done_r)


def _clean_up(workdir: str, job_w: int, fds: tuple[int, ...], done_r: int) -> None:
    for fd in (job_w, *fds, done_r):
        if fd >= 0:
            os.close(fd)
    try:  # the common case, in 4 system calls; anything the run added goes through rmtree
        for name in _OUTPUTS:
            os.unlink(os.path.join(workdir, name))
        os.rmdir(workdir)
    except OSError:
        shutil.rmtree(workdir, ignore_errors=True)


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


def _kill(child: _Child) -> None:
    """SIGKILL through the pidfd: it cannot hit a recycled pid. A child cannot fork, so it is one process."""
    try:
        signal.pidfd_send_signal(child.pidfd, signal.SIGKILL)
    except (ProcessLookupError, PermissionError, OSError):
        pass


def main(fd: int, setup: Setup | Exception, started: tuple[int, object] | Exception) -> None:
    """Serve the client on socket `fd` (`setup` and the zygote `started` by `launch`, or the error that
    stopped either)."""
    sock = socket.socket(fileno=fd)
    try:
        for failed in (setup, started):
            if isinstance(failed, Exception):
                raise failed
        server = ForkServer(sock, setup, started)
    except Exception as exc:  # the client raises SandboxUnavailable with this
        send_msg(sock, {"error": f"{type(exc).__name__}: {exc}"})
        return
    gc.freeze()  # the server's own objects made so far are never garbage either
    try:
        server.serve()
    except (BrokenPipeError, ConnectionResetError):
        pass  # the client exited (e.g. `proofcode grade` stopped early after starting us): nothing to report
