"""Call one function of an untrusted program on many inputs in the sandbox; its answers come back as data.

The benchmark formats compare answers with their own rules (evalplus's tolerances, LiveCodeBench's
list/tuple rule), so the comparison happens here, in the trusted caller, on answers the sandboxed
run printed: the expected outputs never enter the sandbox, and whatever the program prints or forges
is only its own answer. Answers travel in the sandbox's plain-data encoding (`coder.sandbox.plain`),
so a tuple stays a tuple and an object with a forged `__eq__` arrives as "non-plain" and fails.
"""
from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field

from coder.sandbox import Limits, Verdict, run_program
from coder.sandbox.plain import Unsupported, decode

# Runs in the sandbox (stdin: the job as JSON). The candidate's own output is swallowed (as evalplus and
# LiveCodeBench do); each answer is one line `MARK {"i": .., "out"|"error": ..}` written to fd 1.
_DRIVER = r'''
import io, json, os, sys
from coder.sandbox.plain import decode, encode

job = json.loads(sys.stdin.read())
mark = job["mark"]


def emit(obj):
    data = (mark + " " + json.dumps(obj) + "\n").encode()
    while data:
        data = data[os.write(1, data):]


def describe(exc):
    try:
        return (type(exc).__name__ + ": " + str(exc))[:300]
    except BaseException:
        return "exception"


class Sink(io.TextIOBase):
    def write(self, s):
        return len(s)


def post(out):
    how = job["post"]
    if how == "is_not_none":  # evalplus ground truth of its "output is not None" tasks
        return out is not None
    if how == "bool_or_not_none":  # evalplus candidates on those tasks
        return out if isinstance(out, bool) else out is not None
    if how == "tuple_as_list" and isinstance(out, tuple):  # LiveCodeBench
        return list(out)
    return out


def main():
    sys.stdin, sys.stdout, sys.stderr = io.StringIO(""), Sink(), Sink()
    ns = dict(job["namespace"])
    try:
        if job["preamble"]:
            exec(job["preamble"], ns)
        exec(compile(job["src"], "<candidate>", "exec"), ns)
        target = ns["Solution"]() if job["solution_class"] and "Solution" in ns else None
        fn = getattr(target, job["fn"]) if target is not None else ns[job["fn"]]
    except BaseException as exc:
        emit({"load_error": describe(exc)})
        return
    for i, raw in enumerate(job["inputs"]):
        try:
            args = decode(raw) if job["encoded"] else [json.loads(line) for line in raw.split("\n")]
            emit({"i": i, "out": encode(post(fn(*args)))})
        except BaseException as exc:
            emit({"i": i, "error": describe(exc)})


main()
'''

# Room for many answers: a HumanEval+ task has up to ~1,000 inputs.
_MIN_OUTPUT_BYTES = 64 << 20
_MIN_FILE_MB = 64


@dataclass
class Calls:
    """What one driver run returned: an answer (or an error text) per input, in order."""

    verdict: Verdict  # the run itself: passed = exited normally
    outputs: list = field(default_factory=list)  # decoded answers, None where `errors` has the case
    errors: dict[int, str] = field(default_factory=dict)
    load_error: str | None = None
    answered: int = 0  # inputs that got an answer or an error before the run ended

    @property
    def complete(self) -> bool:
        return self.load_error is None and self.verdict.passed


def call_function(src: str, fn: str, inputs: list, limits: Limits, *, encoded: bool = True, post: str = "",
                  preamble: str = "", namespace: dict | None = None, solution_class: bool = False) -> Calls:
    """Run `src` in the sandbox, call `fn` (or `Solution().fn`) on each input, return the answers.

    `inputs`: each a plain-encoded argument list (`encoded=True`) or LiveCodeBench's JSON lines, one
    argument per line. `post`: how the sandbox reduces an answer before sending it (see `_DRIVER`).
    """
    mark = secrets.token_hex(8)
    job = {"mark": mark, "src": src, "fn": fn, "inputs": inputs, "encoded": encoded, "post": post,
           "preamble": preamble, "namespace": namespace or {}, "solution_class": solution_class}
    room = limits.model_copy(update={"max_output_bytes": max(limits.max_output_bytes, _MIN_OUTPUT_BYTES),
                                     "file_size_mb": max(limits.file_size_mb, _MIN_FILE_MB)})
    verdict = run_program(_DRIVER, json.dumps(job), room)
    calls = Calls(verdict=verdict, outputs=[None] * len(inputs))
    seen = 0
    for line in verdict.stdout.splitlines():
        if not line.startswith(mark + " "):
            continue  # the program wrote to fd 1 itself: not an answer
        try:
            msg = json.loads(line[len(mark) + 1:])
        except (ValueError, RecursionError):
            return _forged(calls, "an unreadable answer line")
        if not isinstance(msg, dict):
            return _forged(calls, "an answer line that is not an object")
        if "load_error" in msg:
            calls.load_error = str(msg["load_error"])
            return calls
        if msg.get("i") != seen:  # answers come in order, once each; anything else was forged
            return _forged(calls, "answers out of order")
        if "error" in msg:
            calls.errors[seen] = str(msg["error"])
        else:
            try:
                calls.outputs[seen] = decode(msg.get("out"))
            except Unsupported as exc:
                calls.errors[seen] = str(exc)
            except (ValueError, TypeError, KeyError, IndexError, RecursionError, OverflowError):
                return _forged(calls, "a malformed answer")
        seen = calls.answered = seen + 1
    if seen < len(inputs) and verdict.passed:
        calls.verdict = Verdict(status="runtime_error", protections=verdict.protections, time_s=verdict.time_s,
                                detail=f"the program stopped after {seen} of {len(inputs)} inputs")
    return calls


def _forged(calls: Calls, what: str) -> Calls:
    calls.load_error = f"the run wrote {what} (answers are the driver's to write)"
    return calls



def short(value: object) -> str:
    """repr(value), cut to 80 characters, for a verdict's detail."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
