"""What runs inside a sandboxed child: the candidate under a recording wrapper, or the trusted replay.

Stage 1 (untrusted): exec the program, run the test code against `_Recorder`s of the entry points;
each call appends one JSON line (args, result as plain data) to the recording file as it happens.
Stage 2 (trusted, in the fork server: a separate process the candidate never touched): exec the pristine test code
against `_Replay`s that return the recorded plain values; its outcome is the verdict. A forged
recording is only a set of answers; stack walks, os._exit, redefined `check` cannot reach stage 2.
"""
from __future__ import annotations

import builtins
import json
import linecache
import marshal
import os
import random
import sys
import traceback

from coder.sandbox.plain import Unsupported, decode, encode

TESTS_FILE = "<tests>"
CANDIDATE_FILE = "<candidate>"
PROGRAM_FILE = "<program>"
_DETAIL_CHARS = 300


def _not_plain(value: object) -> object:
    raise TypeError(f"not plain data: {type(value).__name__}")


try:  # json's C encoder, built once (in the zygote): json.dumps builds one per call, and in a
    # fresh child that touches (copy-on-write faults) dozens of pages more.
    from json.encoder import c_make_encoder as _make_encoder, encode_basestring_ascii as _ascii

    _ENCODER = _make_encoder(None, _not_plain, _ascii, None, ": ", ", ", False, False, True)
except (ImportError, TypeError):
    _ENCODER = None


def _json_line(obj: object) -> bytes:
    """`json.dumps(obj) + "\\n"`, encoded (the recording's format)."""
    text = "".join(_ENCODER(obj, 0)) if _ENCODER is not None else json.dumps(obj)
    return (text + "\n").encode()


def _short(exc: BaseException) -> str:
    message = str(exc)
    text = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    return text if len(text) <= _DETAIL_CHARS else text[: _DETAIL_CHARS - 3] + "..."


class _Recorder:
    """Calls the real candidate and writes (name, args, result) as plain data to `fd`.

    `guard_random`: restore the `random` state after each call, so the tests' random stream does not
    depend on the candidate (costs ~20 us a call; needless when neither tests nor program mention random).
    """

    def __init__(self, name: str, fn, fd: int, guard_random: bool = True):
        self.name, self.fn, self.fd, self.guard_random = name, fn, fd, guard_random

    def __call__(self, *args, **kwargs):
        entry = {"name": self.name, "args": encode([list(args), kwargs])}
        state = random.getstate() if self.guard_random else None
        try:
            result = self.fn(*args, **kwargs)
        except BaseException as exc:
            entry["raise"] = [type(exc).__name__, str(exc)[:_DETAIL_CHARS]]
            self._write(entry)
            raise
        finally:
            if state is not None:
                random.setstate(state)
        entry["out"] = encode(result)
        entry["post"] = encode(list(args))  # in-place mutation of arguments is part of the answer
        self._write(entry)
        return result

    def _write(self, entry: dict) -> None:
        os.write(self.fd, _json_line(entry))


_CODE_CACHE: dict[tuple[str, str], object] = {}


def _compiled(source: str, filename: str, marshalled: bytes | None = None):
    """Compiled code, cached: the server replays the same problem's tests for every sample."""
    key = (source, filename)
    code = _CODE_CACHE.get(key)
    if code is None:
        if len(_CODE_CACHE) >= 512:
            _CODE_CACHE.clear()
        code = _CODE_CACHE[key] = _code(source, filename, marshalled)
    return code


def _code(source: str, filename: str, marshalled: bytes | None):
    """The code of `source`: unmarshalled when the trusted caller compiled it already (compiling in a
    freshly forked child costs it ~1 ms of copy-on-write faults; unmarshalling a fraction), else compiled."""
    return marshal.loads(marshalled) if marshalled else compile(source, filename, "exec")


# What Python's parser and compiler raise on bad source (MemoryError / RecursionError: nesting too deep).
UNPARSABLE = (SyntaxError, ValueError, MemoryError, RecursionError)


def compile_marshalled(source, filename: str = TESTS_FILE) -> bytes | None:
    """`marshal` bytes of `source` (text or a syntax tree) compiled as `filename` (what the job's `*_code`
    fields carry), or None when it does not compile; the child then compiles it and reports the error."""
    try:
        return marshal.dumps(compile(source, filename, "exec"))
    except UNPARSABLE:
        return None


def _exec_tests(tests: str, ns: dict, entry_point: str | None, candidates: dict, code=None) -> None:
    ns.update(candidates)
    exec(code or _compiled(tests, TESTS_FILE), ns)
    check = ns.get("check")
    if entry_point and callable(check) and "def check" in tests:
        check(candidates[entry_point])


def run_candidate(program: str, tests: str, entry_points: list[str], entry_point: str | None, fd: int,
                  done_fd: int | None = None, program_code: bytes | None = None,
                  tests_code: bytes | None = None) -> None:
    """Stage 1, in the untrusted child. Never returns normally: ends with os._exit.

    After the last answer it writes one byte to `done_fd`, so the server can replay while this exits.
    `program_code`/`tests_code`: the sources already compiled and marshalled by the caller, or None.
    """
    def status(kind: str, detail: str = "") -> None:
        os.write(fd, _json_line({"status": kind, "detail": detail}))

    ns: dict = {"__name__": "__candidate__", "__builtins__": builtins}
    try:
        exec(_code(program, CANDIDATE_FILE, program_code), ns)
    except MemoryError as exc:
        status("memory", _short(exc))
        os._exit(1)
    except BaseException as exc:
        status("load_error", _short(exc))
        os._exit(1)
    missing = [n for n in entry_points if not callable(ns.get(n))]
    if missing:
        status("load_error", f"the program does not define a function named {missing[0]!r}")
        os._exit(1)
    # Stage 2 runs the tests with the prompt's helpers, which are part of `program` here: if neither
    # text mentions random, nothing the tests compute can depend on its state.
    guard = "random" in tests or "random" in program
    recorders = {n: _Recorder(n, ns[n], fd, guard) for n in entry_points}
    test_ns = dict(ns)  # tests may use the program's helpers for inputs; stage 2 checks those inputs
    random.seed(0)
    try:
        _exec_tests(tests, test_ns, entry_point, recorders, _code(tests, TESTS_FILE, tests_code))
        status("done")
    except MemoryError as exc:
        status("memory", _short(exc))
    except BaseException as exc:
        status("error", _short(exc))
    _flush()
    if done_fd is not None:
        try:
            os.write(done_fd, b"!")
        except BaseException:
            pass
    os._exit(0)


class ReplayTimeout(BaseException):
    """Raised by the server's alarm when the replay runs past the time limit."""


class _ReplayMismatch(Exception):
    pass


class _Replay:
    """Stands in for the candidate: checks the call matches the recording and returns its answer."""

    def __init__(self, name: str, records: list[dict], cursor: list[int]):
        self.name, self.records, self.cursor = name, records, cursor

    def __call__(self, *args, **kwargs):
        i = self.cursor[0]
        if i >= len(self.records):
            raise _ReplayMismatch(f"the candidate stopped answering after {i} call(s)")
        rec = self.records[i]
        self.cursor[0] = i + 1
        if rec.get("name") != self.name or rec.get("args") != encode([list(args), kwargs]):
            raise _ReplayMismatch(f"call {i + 1} to {self.name} differs from the recorded run")
        if "raise" in rec:
            name, msg = (list(rec["raise"]) + ["", ""])[:2]
            cls = getattr(builtins, str(name), None)
            if not (isinstance(cls, type) and issubclass(cls, Exception)):
                cls = RuntimeError
            # The builtin class itself, so tests that expect it (`except ValueError`) still work;
            # the mark tells an escaped candidate exception from a failing test.
            try:
                exc = cls(msg)
            except Exception:  # e.g. UnicodeDecodeError needs five arguments
                exc = RuntimeError(msg)
            exc.proofcode_candidate = f"{name}: {msg}"
            raise exc
        for target, after in zip(args, decode(rec.get("post", ["l", []]))):
            if type(target) is list and type(after) is list:
                target[:] = after
            elif type(target) is dict and type(after) is dict:
                target.clear()
                target.update(after)
        return decode(rec["out"])


def replay(tests: str, prelude: str, entry_points: list[str], entry_point: str | None,
           records: list[dict], tests_code: bytes | None = None) -> dict:
    """Stage 2, trusted: run the pristine tests against recorded answers; returns {status, detail}."""
    ns: dict = {"__name__": "__tests__", "__builtins__": builtins}
    if prelude:
        try:  # the problem's own prompt: helpers such as HumanEval/32's `poly` that tests call
            exec(_compiled(prelude, "<prompt>"), ns)
        except Exception:
            pass
    # So tracebacks can quote the failing test line.
    linecache.cache[TESTS_FILE] = (len(tests), None, tests.splitlines(True), TESTS_FILE)
    cursor = [0]
    replays = {n: _Replay(n, records, cursor) for n in entry_points}
    random.seed(0)
    try:
        _exec_tests(tests, ns, entry_point, replays, _compiled(tests, TESTS_FILE, tests_code))
    except _ReplayMismatch as exc:
        return {"status": "failed", "detail": str(exc)}
    except Unsupported as exc:
        return {"status": "failed", "detail": str(exc)[:_DETAIL_CHARS]}
    except ReplayTimeout:
        raise
    except BaseException as exc:  # AssertionError, a candidate's exception, or a forged recording
        raised = getattr(exc, "proofcode_candidate", None)
        if raised:
            status = "memory_exceeded" if isinstance(exc, MemoryError) else "runtime_error"
            return {"status": status, "detail": str(raised)[:_DETAIL_CHARS]}
        return {"status": "failed", "detail": _where(exc)}
    return {"status": "passed", "detail": f"{cursor[0]} call(s) checked"}


def _where(exc: BaseException) -> str:
    """'AssertionError at tests line 12: assert candidate(1) == 2'."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == TESTS_FILE]
    where = f" at tests line {frames[-1].lineno}: {(frames[-1].line or '').strip()}" if frames else ""
    return (_short(exc) + where)[: _DETAIL_CHARS * 2]


def run_program(program: str, program_code: bytes | None = None) -> None:
    """stdin/stdout problems: run the program as __main__; stdout goes to the captured file."""
    ns: dict = {"__name__": "__main__", "__builtins__": builtins}
    code = 0
    try:
        exec(_code(program, PROGRAM_FILE, program_code), ns)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except MemoryError:
        traceback.print_exc()
        code = 137
    except BaseException:
        traceback.print_exc()
        code = 1
    _flush()
    os._exit(code)


def _flush() -> None:
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:
        pass


STATUSES = ("passed", "failed", "timeout", "memory_exceeded", "output_limit", "runtime_error", "sandbox_error")


def replay_recording(recording: bytes, tests: str, prelude: str, entry_points: list[str],
                     entry_point: str | None, exit_code: int, tests_code: bytes | None = None) -> dict:
    """Stage 2 entry: parse the (untrusted) recording, then replay. Child claims only lower a verdict."""
    records, last = [], {}
    malformed = {"status": "failed", "detail": "the recording is malformed (the program wrote to it)"}
    try:  # one parse for all lines (each is one JSON object without raw newlines)
        entries = json.loads(b"[" + b",".join(recording.splitlines()) + b"]")
    except ValueError:
        return malformed
    for entry in entries:
        if not isinstance(entry, dict):
            return malformed
        if "status" in entry:
            last = entry
        else:
            records.append(entry)
    kind, detail = str(last.get("status", "")), str(last.get("detail", ""))[:_DETAIL_CHARS]
    if kind == "load_error":
        return {"status": "runtime_error", "detail": detail}
    if kind == "memory":
        return {"status": "memory_exceeded", "detail": detail}
    outcome = replay(tests, prelude, entry_points, entry_point, records, tests_code)
    if outcome["status"] == "failed" and not kind:
        outcome["detail"] += f" (the program exited with status {exit_code} before the tests finished)"
    elif outcome["status"] == "failed" and kind == "error" and "stopped answering" in outcome["detail"]:
        outcome["detail"] = detail
    return outcome
