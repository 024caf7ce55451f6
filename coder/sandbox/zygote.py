"""The zygote: a process forked once from the fork server, already as confined as every run shares
(no new privileges, no capabilities, the big seccomp filter), that forks one child per run.

Why a separate process: a fork makes every page of the forking process copy-on-write, so a server
that forked each child paid a page fault (several microseconds here) for each of the hundreds of
pages it wrote per run while replaying and bookkeeping. The zygote writes only a few pages per fork.
And the kernel compiles the big seccomp filter once, for the zygote; children inherit it and add
their own Landlock domain and a small filter (`Confinement.apply_run`).

The zygote is trusted: it never runs untrusted code. Its children cannot reach it: no signals
(seccomp; Landlock scopes signals to a child's own domain), no ptrace or /proc, and every
descriptor but their own five is closed before their job arrives.

The zygote is off the critical path of a run's end: the server watches each child's pidfd and
reads its exit status and CPU time from /proc/PID/stat while it is a zombie (the zygote reaps only
the children the server names, so the pid cannot be recycled meanwhile).

Children are forked in batches: between two forks the zygote runs only a short loop, so it copies
fewer of its own pages (each fork makes them all copy-on-write again) than a message round per child.

Protocol on a SOCK_SEQPACKET socket pair (one message per datagram):
  server -> zygote   b"F" token n k pid*n workdir*k (NUL-separated) + 5*k descriptors (stdout,
                     stderr, recording, job, finished of each): reap those n exited children, then
                     fork a child for each workdir
                     b"R" n pid*n                   reap those exited children
  zygote -> server   b"K"                          (once: confined, pre-warmed, ready)
                     b"F" token m pid*m message + m pidfds       (the first m forked and confining
                     themselves; when m < k, `message` says why fork failed)
"""
from __future__ import annotations

# The C modules, not `socket`, `pickle` and `tempfile`: those (with shutil, and the compressors it
# loads) are the server's, imported after this zygote is forked (see launch), so no run maps them.
import _pickle
import _socket
import ctypes
import fcntl
import gc
import os
import struct
from array import array

from coder.sandbox import calls, harden, harness, protect

_FORKED = struct.Struct("!QH")  # token, number forked
_FORK = struct.Struct("!QHH")  # token, number of pids to reap, number of children to fork
_COUNT = struct.Struct("!H")
_PID = struct.Struct("!i")
_N_FDS = 5

# fork(2) itself rather than os.fork(): os.fork runs Python's at-fork hooks in the child (random
# reseeds itself from /dev/urandom, among others), whose copy-on-write page faults cost each child
# a few hundred microseconds. Safe because the zygote has a single thread.
_fork = ctypes.CDLL(None, use_errno=True).fork


def start(confinement: protect.Confinement, keep: tuple[int, ...] = (0, 1, 2)) -> tuple[int, _socket.socket]:
    """Fork the zygote from the (single-threaded) server; returns its pid and the server's end of the socket."""
    server_end, zygote_end = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_SEQPACKET)
    server_pid = os.getpid()
    pid = os.fork()
    if pid == 0:
        try:
            server_end.close()
            _close_all_but({*keep, zygote_end.fileno(), *confinement.descriptors()})
            zygote_end = _above_run_fds(zygote_end)
            protect.die_with_parent()
            if os.getppid() != server_pid:  # the server died before the line above
                os._exit(0)
            confinement.apply_zygote()
            gc.freeze()  # children then do not copy every object's page when they collect
            zygote_end.send(b"K")  # ready
            _serve(zygote_end, confinement)
        except BaseException as exc:  # before "ready": the server reports it; after: the server sees EOF
            try:
                zygote_end.send(b"!" + f"{type(exc).__name__}: {exc}".encode(errors="replace")[:1000])
            except OSError:
                pass
        os._exit(70)
    zygote_end.close()
    ready = server_end.recv(4096)
    if ready != b"K":
        os.waitpid(pid, 0)
        raise OSError(f"the sandbox zygote failed to start: {ready[1:].decode(errors='replace') or 'it exited'}")
    return pid, server_end


def prepare() -> None:
    """In the fork server, before it forks its copies and they their zygotes (who inherit it): warm the
    paths every run takes, and note the trusted classes."""
    _prewarm()
    harden.snapshot_trusted_types()  # every class existing now is the stdlib's or a library's


def request_fork(sock: _socket.socket, token: int, runs: list[tuple[str, tuple[int, ...]]], reap: list[int]) -> None:
    """Ask the zygote to reap the exited children `reap`, then fork a child per (workdir, descriptors)
    in `runs` (descriptors: stdout, stderr, recording, job, finished)."""
    message = (b"F" + _FORK.pack(token, len(reap), len(runs)) + b"".join(map(_PID.pack, reap))
               + b"\0".join(os.fsencode(workdir) for workdir, _ in runs))
    _send_fds(sock, message, [fd for _, fds in runs for fd in fds])


def request_reap(sock: _socket.socket, reap: list[int]) -> None:
    """Ask the zygote to reap the exited children `reap`."""
    sock.send(b"R" + _COUNT.pack(len(reap)) + b"".join(map(_PID.pack, reap)))


def read_event(sock: _socket.socket, max_children: int) -> tuple[int, list[tuple[int, int]], str] | None:
    """The zygote's answer to a fork request: (token, [(pid, pidfd) of each child forked], why fork
    failed or ""); None when the zygote is gone."""
    data, fds = _recv_fds(sock, 1 << 16, max_children)
    if data[:1] != b"F":  # end of file, or b"!" and why the zygote failed
        for fd in fds:
            os.close(fd)
        if data:
            os.write(2, b"proofcode sandbox zygote failed: " + data[1:] + b"\n")
        return None
    token, m = _FORKED.unpack_from(data, 1)
    offset = 1 + _FORKED.size
    pids = [_PID.unpack_from(data, offset + i * _PID.size)[0] for i in range(m)]
    return token, list(zip(pids, fds)), data[offset + m * _PID.size:].decode(errors="replace")


def exit_status(pid: int) -> tuple[int, float]:
    """(status as wait(2) reports it, CPU seconds) of an exited, not yet reaped child, from /proc."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    if fields[0] not in (b"Z", b"X"):
        raise OSError(f"process {pid} has not exited (state {fields[0].decode()})")
    # Fields 14-15 utime/stime (clock ticks) and 52 exit_code, counted from the one after "(comm)" as 3.
    return int(fields[49]), (int(fields[11]) + int(fields[12])) / _CLK_TCK


_CLK_TCK = os.sysconf("SC_CLK_TCK")


def _close_all_but(keep: set[int]) -> None:
    low = 0
    for fd in sorted(keep) + [1 << 16]:
        if fd > low:
            os.closerange(low, fd)
        low = fd + 1


def _send_fds(sock: _socket.socket, message: bytes, fds: list[int]) -> None:
    """`message` and `fds` in one datagram (`socket.send_fds`, which this module does not import)."""
    sock.sendmsg([message], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, array("i", fds))])


def _recv_fds(sock: _socket.socket, size: int, max_fds: int) -> tuple[bytes, list[int]]:
    """One datagram and the descriptors it carried (`socket.recv_fds`)."""
    fds = array("i")
    data, ancillary, _, _ = sock.recvmsg(size, _socket.CMSG_LEN(max_fds * fds.itemsize))
    for level, kind, payload in ancillary:
        if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
            fds.frombytes(payload[: len(payload) - len(payload) % fds.itemsize])
    return data, list(fds)


def _above_run_fds(sock: _socket.socket) -> _socket.socket:
    """Move the socket out of 0-5 and fill 0-5 with /dev/null: the zygote puts each child's descriptors
    there before forking it, and descriptors it receives then never land in 0-5."""
    high = _socket.socket(fileno=fcntl.fcntl(sock.fileno(), fcntl.F_DUPFD_CLOEXEC, 100))
    sock.close()
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in range(6):
        if fd != devnull:
            os.dup2(devnull, fd)
    if devnull > 5:
        os.close(devnull)
    return high


def _serve(sock: _socket.socket, confinement: protect.Confinement) -> None:
    """The zygote's loop: reap and fork on request. Never returns; exits when the server goes."""
    me = os.getpid()
    try:
        while True:
            data, fds = _recv_fds(sock, 1 << 16, 250)
            if not data:
                os._exit(0)  # the server closed its end
            if data[:1] == b"R":
                _reap(data, 1 + _COUNT.size, _COUNT.unpack_from(data, 1)[0])
                continue
            token, n, k = _FORK.unpack_from(data, 1)
            workdirs = data[1 + _FORK.size + n * _PID.size:].split(b"\0")
            _reap(data, 1 + _FORK.size, n)
            pids, error, rulesets = [], "", []
            try:  # all before the first fork: the pages this writes are copied once per batch, not per child
                for i in range(k):
                    rulesets.append(confinement.ruleset(os.fsdecode(workdirs[i])))
            except OSError as exc:  # the server is told, as for a failed fork, and fails those runs
                error, k = str(exc), len(rulesets)
            for i in range(k):  # kept short: every page written here is copied again after each fork
                workdir = os.fsdecode(workdirs[i])
                # The child's cwd, TMPDIR (where `tempfile` puts a program's files) and fds 1-5 (stdout,
                # stderr, recording, job, finished) are set here, so it inherits them: cheaper than each
                # child doing it.
                os.chdir(workdir)
                os.environ["TMPDIR"] = workdir
                for target in range(1, _N_FDS + 1):
                    os.dup2(fds[_N_FDS * i + target - 1], target)
                pid = _fork()
                if pid == 0:
                    _child(confinement, rulesets[i], me)
                if pid < 0:
                    error = os.strerror(ctypes.get_errno())
                    break
                os.setpgid(pid, pid)  # its own process group, as a run always had
                pids.append(pid)
            for received in fds + [r for r in rulesets if r is not None]:
                os.close(received)
            for target in range(1, _N_FDS + 1):  # let go of the last child's descriptors
                os.dup2(0, target)
            pidfds = [os.pidfd_open(pid) for pid in pids]
            message = b"F" + _FORKED.pack(token, len(pids)) + b"".join(map(_PID.pack, pids)) + error.encode()
            _send_fds(sock, message, pidfds)
            for pidfd in pidfds:
                os.close(pidfd)
    except (BrokenPipeError, ConnectionResetError):
        os._exit(0)  # the server went away


def _reap(data: bytes, offset: int, n: int) -> None:
    for i in range(n):
        try:
            os.waitpid(_PID.unpack_from(data, offset + i * _PID.size)[0], 0)
        except ChildProcessError:
            pass


def _child(confinement: protect.Confinement, ruleset: int | None, zygote_pid: int) -> None:
    """A forked child (cwd, TMPDIR and fds 0-5 already set by the zygote; `ruleset`: its Landlock
    ruleset): confine, wait for the job, run it. Never returns."""
    try:
        protect.die_with_parent()
        if os.getppid() != zygote_pid:  # the zygote died before the line above
            os._exit(70)
        confinement.apply_run(ruleset)  # after the prctl above
        os.closerange(6, 1 << 16)  # the zygote's socket, Landlock's descriptors, other children's fds
        # No warm-up here while waiting: on a busy machine it competes with the runs in flight, and
        # the zygote's pre-warming already took most of what it saved.
        _run_job(_read_all(4))
    except BaseException as exc:
        os.write(2, f"sandbox setup failed: {exc}\n".encode())
    os._exit(70)


_PREWARM_PROGRAM = "from typing import List\n\ndef add(xs: List[int], k: int = 1) -> List[int]:\n    return [x + k for x in xs]\n"
_PREWARM_TESTS = "def check(candidate):\n    assert candidate([1, 2], 3) == [4, 5]\n    assert candidate([]) == []\n"
_PREWARM_JOB = {"kind": "tests", "program": _PREWARM_PROGRAM, "limits": {"timeout_s": 1.0, "memory_mb": 64}}


def _prewarm(rounds: int = 20) -> None:
    """In the zygote, before it forks anything: run a small job down the paths every job takes
    (unpickling it, compile, exec, recorded calls), often enough that CPython has specialised
    (rewritten) that bytecode here, once, instead of in every child."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        for _ in range(rounds):
            job = _pickle.loads(_pickle.dumps(_PREWARM_JOB, protocol=-1))
            ns: dict = {"__name__": "__prewarm__", "__builtins__": __builtins__}
            exec(compile(job["program"], "<candidate>", "exec"), ns)
            session = calls.Recording(devnull, ns, dict(ns), [], False, False, False)
            harness._exec_tests(_PREWARM_TESTS, dict(ns), "add", {"add": session.recorder("add", ns["add"])})
    except Exception:
        pass  # only an optimisation
    finally:
        os.close(devnull)


def _run_job(data: bytes) -> None:
    """In a confined child, once its job arrives: apply the job's limits, then run it (never returns)."""
    job = _pickle.loads(data)  # written by the server, not by untrusted code
    limits = job["limits"]
    if job["kind"] == "program" and job.get("stdin"):
        fd = os.open(".stdin", os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        write_all(fd, job["stdin"].encode())
        os.lseek(fd, 0, os.SEEK_SET)
        os.dup2(fd, 0)
        os.close(fd)
    protect.set_rlimits(limits["cpu_time_s"], limits["memory_mb"], limits["file_size_mb"], limits["open_files"])
    if job["kind"] == "program":
        harness.run_program(job["program"], job.get("program_code"))
    harness.run_candidate(job["program"], job["tests"], job["entry_points"], job["entry_point"], 3, done_fd=5,
                          program_code=job.get("program_code"), tests_code=job.get("tests_code"),
                          options=job.get("options"))


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
    os.close(fd)
    return b"".join(chunks)
