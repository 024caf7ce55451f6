"""What runs inside a sandboxed child: the candidate under a recording wrapper, or the trusted replay.

Stage 1 (untrusted): exec the program, run the test code against recorders of the entry points;
each call appends one JSON line (see `calls`: its answer, effects and argument changes) as it happens.
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
import types

from coder.sandbox.calls import GLOBALS, Recording, Replaying, ReplayMismatch, json_text, short as _short
from coder.sandbox.contract import CANDIDATE_FILE, PROGRAM_FILE, TESTS_FILE, UNREPLAYABLE
from coder.sandbox.plain import _DEEP, Unsupported
from coder.sandbox.rebuild import _standin

_DETAIL_CHARS = 300


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


class TestsFailed(Exception):
    """A unittest.TestCase in the tests failed or errored; `candidate` when a candidate's exception did."""

    def __init__(self, detail: str, candidate: str = ""):
        super().__init__(detail)
        self.candidate = candidate


def _exec_tests(tests: str, ns: dict, entry_point: str | None, candidates: dict, code=None) -> None:
    ns.update(candidates)
    before = set(ns) if "TestCase" in tests else None
    exec(code or _compiled(tests, TESTS_FILE), ns)
    check = ns.get("check")
    if entry_point and callable(check) and "def check" in tests:
        check(candidates[entry_point])
    if before is not None:
        _run_test_cases([v for k, v in ns.items() if k not in before and isinstance(v, type)])


def _run_test_cases(classes: list) -> None:
    """Run the unittest.TestCase classes the tests defined, as `python -m unittest` would."""
    import unittest

    cases = [c for c in classes if issubclass(c, unittest.TestCase)]
    if not cases:
        return
    raised: list = []

    unreplayable: list = []

    class Result(unittest.TestResult):
        def addError(self, test, err):
            if isinstance(err[1], Unsupported):
                unreplayable.append(err[1])
            raised.append(getattr(err[1], "proofcode_candidate", ""))
            super().addError(test, err)

    loader, result = unittest.TestLoader(), Result()
    unittest.TestSuite(loader.loadTestsFromTestCase(c) for c in cases).run(result)
    if unreplayable:
        raise unreplayable[0]
    problems = result.failures + result.errors + [(t, "unexpected success") for t in result.unexpectedSuccesses]
    if problems:
        test, text = problems[0]
        last = [line for line in str(text).strip().splitlines() if line.strip()][-1:] or [""]
        candidate = next((r for r in raised if r), "") if not result.failures else ""
        raise TestsFailed(f"{test.id().rsplit('.', 1)[-1]}: {last[0]}"[:_DETAIL_CHARS * 2], candidate)
    if not result.testsRun:
        raise TestsFailed("the tests define no test methods")


def run_candidate(program: str, tests: str, entry_points: list[str], entry_point: str | None, fd: int,
                  done_fd: int | None = None, program_code: bytes | None = None,
                  tests_code: bytes | None = None, options: dict | None = None) -> None:
    """Stage 1, in the untrusted child. Never returns normally: ends with os._exit.

    After the last answer it writes one byte to `done_fd`, so the server can replay while this exits.
    `program_code`/`tests_code`: the sources already compiled and marshalled by the caller, or None.
    `options`: shared (program globals the tests read), token (compatible verdicts: see harden).
    """
    options = options or {}
    write, exit_now, token = os.write, os._exit, options.get("token")

    def status(kind: str, detail: str = "") -> None:
        write(fd, (json_text({"status": kind, "detail": detail}) + "\n").encode())

    _headroom(6 if token else 5)  # tests module, and recorder, call, _call, _invoke (and _checked) around each call
    trusted = None
    if token:
        from coder.sandbox import harden

        trusted = harden.lock_down(options.get("test_imports", ()))
        untouched = harden.watch()
    ns = _module_namespace()
    try:
        exec(_code(program, CANDIDATE_FILE, program_code), ns)
    except MemoryError as exc:
        status("memory", _short(exc))
        exit_now(1)
    except BaseException as exc:
        status("load_error", _short(exc))
        exit_now(1)
    missing = [n for n in entry_points if not callable(ns.get(n))]
    if missing:
        status("load_error", f"the program does not define a function named {missing[0]!r}")
        exit_now(1)
    # tests may use the program's helpers for inputs; stage 2 checks those inputs
    test_ns = dict(ns, __builtins__=dict(vars(builtins))) if token else dict(ns)
    # Stage 2 runs the tests with the prompt's helpers, which are part of `program` here: if neither
    # text mentions random, nothing the tests compute can depend on its state.
    session = Recording(fd, ns, test_ns, [n for n in options.get("shared", ()) if n in ns],
                        "random" in tests or "random" in program, "stdout" in tests, "warn" in tests,
                        frozenset(options.get("trusted_classes", ())))
    recorders = {n: session.recorder(n, ns[n]) for n in entry_points}
    if trusted is not None:  # checked after every call (handles through the session) and at the end
        session.watch(untouched)
        recorders = {n: _checked(r, untouched) for n, r in recorders.items()}
    for n in options.get("classes", ()):  # the program's classes the tests construct by name
        if isinstance(ns.get(n), type):
            recorders[n] = session.class_recorder(n, ns[n])
    if options.get("globals"):  # test_ns has them already; the replay gets them from this call
        for n in session.program_globals(list(options["globals"])):
            recorders[n] = session.class_recorder(n, ns[n])
    random.seed(0)
    passed = False
    try:
        _exec_tests(tests, test_ns, entry_point, recorders, _code(tests, TESTS_FILE, tests_code))
        passed = True
        status("done")
    except MemoryError as exc:
        status("memory", _short(exc))
    except BaseException as exc:
        status("error", _short(exc))
    if passed and trusted is not None and all(id(t) in trusted for t in session.foreign) and untouched():
        write(fd, (json_text({"status": "done", "sandbox": token}) + "\n").encode())
    _flush()
    if done_fd is not None:
        try:
            write(done_fd, b"!")
        except BaseException:
            pass
    exit_now(0)


def _checked(recorder, untouched):
    """A recorder that runs the compatible mode's integrity check after each call, from a closure the
    program cannot reach (the session's own check is a second line, for handles)."""
    def candidate(*args, **kwargs):
        try:
            return recorder(*args, **kwargs)
        finally:
            untouched()

    candidate.__name__ = candidate.__qualname__ = recorder.__name__
    candidate.__doc__ = recorder.__doc__
    return candidate


def _headroom(wrappers: int) -> None:
    """A plain run starts the tests at the bottom of the stack and calls the candidate directly; here the
    harness's frames are below the tests and `wrappers` frames around each call. The recursion limit
    grows by as many, so a program that fits under the plain limit fits here, and one that does not, does not."""
    depth, frame = 0, sys._getframe(1)
    while frame is not None:
        depth += 1
        frame = frame.f_back
    sys.setrecursionlimit(sys.getrecursionlimit() + depth + wrappers)


def _module_namespace() -> dict:
    """A fresh `__candidate__` module's namespace, registered in sys.modules as a script's `__main__` is
    (dataclasses, pickle and typing look classes' modules up there)."""
    module = types.ModuleType("__candidate__")
    module.__builtins__ = builtins
    sys.modules["__candidate__"] = module
    return vars(module)


def _program_globals(session: Replaying, ns: dict, names: set) -> dict:
    """The program's module-level values the tests read, from the run's first recorded call: values into
    `ns`; the program's classes among them as named classes (returned, name -> stand-in)."""
    try:
        answer = session.call(GLOBALS, (), {})
    except Unsupported:  # a value the replay cannot rebuild: the tests reading them fail as they did
        return {}
    values, classes = (answer.get("values"), answer.get("classes")) if type(answer) is dict else (None, None)
    if type(values) is not dict or type(classes) is not list:
        raise ValueError("malformed recording: program globals")
    ns.update((k, v) for k, v in values.items() if k in names)
    return {n: session.class_replay(n) for n in classes if type(n) is str and n in names}


def _exception_standins(ns: dict, described: dict) -> None:
    """The program's exception classes the tests name, as stand-ins in the replay's namespace ({name: [base
    name, {class attribute: plain value}]}): the exceptions the replay rebuilds from the recording are of
    these classes, so `except E` and `assertRaises(E)` catch them as they catch the program's own."""
    def make(name: str, seen: tuple = ()) -> type | None:
        if isinstance(ns.get(name), type) and issubclass(ns[name], BaseException):
            return ns[name]
        entry = described.get(name)
        if type(entry) is not list or len(entry) != 2 or type(entry[0]) is not str or name in seen:
            return None
        base, attributes = entry
        parent = make(base, (*seen, name)) if base in described else getattr(builtins, base, None)
        if not (isinstance(parent, type) and issubclass(parent, BaseException)):
            return None
        attributes = {k: v for k, v in attributes.items() if type(k) is str and k.isidentifier()
                      and not k.startswith("__")} if type(attributes) is dict else {}
        # A class of this run's own when it has attributes (stand-ins are shared between runs otherwise).
        ns[name] = type(name, (parent,), {"__module__": "__candidate__", **attributes}) if attributes \
            else _standin(name, (parent,))
        return ns[name]

    for name in described if type(described) is dict else ():
        if type(name) is str:
            make(name)




class ReplayTimeout(BaseException):
    """Raised by the server's alarm when the replay runs past the time limit."""


def replay(tests: str, prelude: str, entry_points: list[str], entry_point: str | None,
           records: list[dict], tests_code: bytes | None = None, shared: list[str] = (),
           classes: list[str] = (), exceptions: dict | None = None, program_globals: list[str] = ()) -> dict:
    """Stage 2, trusted: run the pristine tests against recorded answers; returns {status, detail}."""
    ns = _module_namespace()
    if prelude:
        try:  # the problem's own prompt: its helpers, classes, constants and imports are the tests' too
            exec(_compiled(prelude, "<prompt>"), ns)
        except Exception:
            pass
    _exception_standins(ns, exceptions or {})
    # So tracebacks can quote the failing test line.
    linecache.cache[TESTS_FILE] = (len(tests), None, tests.splitlines(True), TESTS_FILE)
    session = Replaying(records, ns, [n for n in shared if n in ns])
    replays = {n: session.replay(n) for n in entry_points}
    replays.update({str(n): session.class_replay(str(n)) for n in classes})
    if program_globals:
        replays.update(_program_globals(session, ns, set(program_globals)))
    _headroom(1)  # the caller restores the limit
    random.seed(0)
    try:
        _exec_tests(tests, ns, entry_point, replays, _compiled(tests, TESTS_FILE, tests_code))
    except ReplayMismatch as exc:
        return {"status": "failed", "detail": str(exc)}
    except Unsupported as exc:
        return {"status": "failed", "detail": str(exc)[:_DETAIL_CHARS], "unreplayable": True}
    except ReplayTimeout:
        raise
    except TestsFailed as exc:
        if exc.candidate:
            return {"status": "runtime_error", "detail": exc.candidate}
        return {"status": "failed", "detail": str(exc)}
    except BaseException as exc:  # AssertionError, a candidate's exception, or a forged recording
        raised = getattr(exc, "proofcode_candidate", None)
        if raised:
            status = "memory_exceeded" if isinstance(exc, MemoryError) else "runtime_error"
            return {"status": status, "detail": str(raised)[:_DETAIL_CHARS]}
        return {"status": "failed", "detail": _where(exc)}
    return {"status": "passed", "detail": f"{session.cursor} call(s) checked"}


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
                     entry_point: str | None, exit_code: int, tests_code: bytes | None = None,
                     options: dict | None = None) -> dict:
    """Stage 2 entry: parse the (untrusted) recording, then replay. Child claims only lower a verdict,
    except the compatible mode's in-sandbox pass, which needs the job's secret token."""
    options = options or {}
    records, last, sandbox = [], {}, None
    malformed = {"status": "failed", "detail": "the recording is malformed (the program wrote to it)"}
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, _DEEP))  # deeply nested answers
    try:  # one parse for all lines (each is one JSON object without raw newlines)
        entries = json.loads(b"[" + b",".join(recording.splitlines()) + b"]")
    except (ValueError, RecursionError):
        return malformed
    finally:
        sys.setrecursionlimit(limit)
    for entry in entries:
        if not isinstance(entry, dict):
            return malformed
        if "sandbox" in entry:
            sandbox = entry.get("sandbox")
        elif "status" in entry:
            last = entry
        else:
            records.append(entry)
    kind, detail = str(last.get("status", "")), str(last.get("detail", ""))[:_DETAIL_CHARS]
    if kind == "load_error":
        return {"status": "runtime_error", "detail": detail}
    if kind == "memory":
        return {"status": "memory_exceeded", "detail": detail}
    try:
        outcome = replay(tests, prelude, entry_points, entry_point, records, tests_code, options.get("shared", ()),
                         options.get("classes", ()), options.get("exceptions") or {}, options.get("globals", ()))
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
        return {**malformed, "detail": f"the recording is malformed ({type(exc).__name__})"}
    outcome["verified"] = "replay"
    if outcome.pop("unreplayable", False):
        token = options.get("token")
        if token and exit_code == 0 and type(sandbox) is str and sandbox == token:
            return {"status": "passed", "detail": f"in the sandbox ({outcome['detail']})"[:_DETAIL_CHARS * 2],
                    "verified": "in_sandbox"}
        if not token:
            outcome["detail"] += UNREPLAYABLE
    if outcome["status"] == "failed" and not kind:
        outcome["detail"] += f" (the program exited with status {exit_code} before the tests finished)"
    elif outcome["status"] == "failed" and kind == "error" and "stopped answering" in outcome["detail"]:
        outcome["detail"] = detail
    return outcome
