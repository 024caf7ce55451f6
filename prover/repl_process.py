"""One REPL subprocess: send a command, wait for its response with a deadline, watch its memory.

Every failure is an exception naming the command that caused it; after `ReplTimeout`,
`ReplCrashed` or `ReplProtocolError` the process is dead and must be replaced.
"""
from __future__ import annotations

import os
import selectors
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Sequence

from .repl_protocol import ReplProtocolError, ReplResponse, decode_response, encode_command, parse_response

_POLL_S = 0.1  # how often a waiting command checks the child's memory


class ReplTimeout(TimeoutError):
    """The command did not answer in time; the process was killed."""


class ReplCrashed(RuntimeError):
    """The process exited, hit EOF or exceeded its memory limit while running a command."""

    def __init__(self, message: str, out_of_memory: bool = False):
        super().__init__(message)
        self.out_of_memory = out_of_memory


def rss_mb(pid: int) -> float | None:
    """Resident memory of `pid` in MiB (Linux /proc), or None if it cannot be read."""
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except (OSError, ValueError, IndexError):
        return None
    return None


def _tree_rss_mb(pid: int) -> float | None:
    # `lake env repl` runs the REPL as a child of lake: count the whole process group.
    total, seen = 0.0, False
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            if os.getpgid(int(entry.name)) != pid:
                continue
        except OSError:
            continue
        value = rss_mb(int(entry.name))
        if value is not None:
            total, seen = total + value, True
    return total if seen else rss_mb(pid)


class ReplProcess:
    """A running REPL. Not thread-safe: the pool gives one thread at a time a process."""

    def __init__(self, command: Sequence[str], cwd: str | Path | None = None,
                 env: dict[str, str] | None = None, memory_limit_mb: float | None = None):
        self.command = list(command)
        self.memory_limit_mb = memory_limit_mb
        self._stderr = tempfile.TemporaryFile()
        try:
            self.proc = subprocess.Popen(
                self.command, cwd=cwd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=self._stderr, start_new_session=True)  # own group: kill lake and repl together
        except FileNotFoundError as exc:
            self._stderr.close()
            raise ReplCrashed(f"cannot start the REPL {self.command[0]!r}: {exc.strerror}") from None
        os.set_blocking(self.proc.stdout.fileno(), False)
        self._buffer = b""
        self._selector = selectors.DefaultSelector()
        self._selector.register(self.proc.stdout, selectors.EVENT_READ)
        self.commands_run = 0
        self.in_flight = False  # a command was sent and its answer not read: the process is unusable
        self._answered = False  # before the first answer, `lake exe repl` may print build progress

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def rss_mb(self) -> float | None:
        """Current resident memory of the REPL (and its launcher) in MiB."""
        return _tree_rss_mb(self.proc.pid)

    def send(self, cmd: dict, timeout: float | None) -> ReplResponse:
        """Run one command and return its parsed response; raises on timeout, crash or garbage."""
        what = _describe(cmd)
        if not self.alive:
            raise ReplCrashed(f"REPL exited (code {self.proc.returncode}) before {what}{self._stderr_tail()}")
        self.in_flight = True
        try:
            self.proc.stdin.write(encode_command(cmd))
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError) as exc:
            self.kill()
            raise ReplCrashed(f"REPL closed its input while sending {what}: {exc}{self._stderr_tail()}") from None
        self.commands_run += 1
        chunk = self._read_response(what, timeout)
        self.in_flight = False
        try:
            return parse_response(decode_response(chunk))
        except ReplProtocolError as exc:
            self.kill()
            raise ReplProtocolError(f"{exc} (in answer to {what})") from None

    def _read_response(self, what: str, timeout: float | None) -> bytes:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            idx = self._buffer.find(b"\n\n")
            if idx >= 0:
                chunk, self._buffer = self._buffer[:idx], self._buffer[idx + 2:]
                if not chunk.strip() or (not self._answered and b"{" not in chunk):
                    continue
                self._answered = True
                return chunk
            wait = _POLL_S if deadline is None else min(_POLL_S, deadline - time.monotonic())
            if wait <= 0:
                self.kill()
                raise ReplTimeout(f"REPL gave no answer within {timeout:g}s to {what}; process killed")
            if self._selector.select(wait):
                data = os.read(self.proc.stdout.fileno(), 1 << 20)
                if not data:
                    self._on_eof(what)
                self._buffer += data
            self._check_memory(what)

    def _on_eof(self, what: str) -> None:
        partial = self._buffer.strip()
        self.kill()
        code = self.proc.returncode
        oom = code in (-signal.SIGKILL, 137)
        detail = f"; partial output {partial[:200]!r}" if partial else ""
        raise ReplCrashed(f"REPL exited (code {code}{', likely out of memory' if oom else ''}) while "
                          f"running {what}{detail}{self._stderr_tail()}", out_of_memory=oom)

    def _check_memory(self, what: str) -> None:
        if self.memory_limit_mb is None:
            return
        used = self.rss_mb()
        if used is not None and used > self.memory_limit_mb:
            self.kill()
            raise ReplCrashed(f"REPL used {used:.0f} MiB > memory limit {self.memory_limit_mb:g} MiB "
                              f"while running {what}; process killed", out_of_memory=True)

    def _stderr_tail(self) -> str:
        try:
            self._stderr.seek(0, os.SEEK_END)
            size = self._stderr.tell()
            self._stderr.seek(max(0, size - 500))
            tail = self._stderr.read().decode("utf-8", errors="replace").strip()
        except (OSError, ValueError):
            return ""
        return f"; stderr: {tail}" if tail else ""

    def kill(self) -> None:
        """Kill the REPL and everything it started; idempotent."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except OSError:
                self.proc.kill()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass

    def close(self, grace: float = 1.0) -> None:
        """Close stdin (the REPL exits on EOF), wait `grace` seconds, then kill."""
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=grace)
            except (OSError, subprocess.TimeoutExpired):
                pass
        self.kill()
        for f in (self.proc.stdin, self.proc.stdout, self._stderr):
            try:
                f.close()
            except OSError:
                pass
        self._selector.close()


def _describe(cmd: dict) -> str:
    """A short name for a command in error messages."""
    for key in ("cmd", "tactic", "path", "pickleTo", "unpickleEnvFrom", "unpickleProofStateFrom"):
        if key in cmd:
            text = str(cmd[key]).replace("\n", "\\n")
            return f"{key} {text[:120]!r}" + ("..." if len(text) > 120 else "")
    return repr(cmd)[:120]
