"""LiveCodeBench code-generation release files, graded with LiveCodeBench's own comparison rules.

Fields read: `question_id` (the task id), `public_test_cases` and `private_test_cases` (each case's
`input` and `output`), `metadata` (`func_name`, or `fn_name`: the method a functional case calls),
`question_content` (kept as the statement). Without a function name every case is stdin/stdout.
"""
from __future__ import annotations

import base64
import binascii
import json
import pickletools
import zlib
from decimal import Decimal, InvalidOperation

from coder.formats.driver import call_function, short
from coder.formats.dispatch import is_livecodebench  # noqa: F401 (told apart where formats are dispatched)
from coder.problems import Problem
from coder.sandbox import Limits, Verdict, run_program

_MAX_DECODED_BYTES = 1 << 30  # a compressed private test set may not expand beyond this

# LiveCodeBench runs every solution after `from M import *` and `import M` for these modules, so
# solutions may use `deque`, `List`, `gcd`, ... without importing them (its testing_util.py).
_STAR_MODULES = ("string", "re", "datetime", "collections", "heapq", "bisect", "copy", "math", "random",
                 "statistics", "itertools", "functools", "operator", "io", "sys", "json", "builtins", "typing")
PREAMBLE = ("".join(f"from {m} import *\n" for m in _STAR_MODULES)
            + "".join(f"import {m}\n" for m in _STAR_MODULES if m not in ("builtins", "typing"))
            + "sys.setrecursionlimit(50000)\nsys.set_int_max_str_digits(50000)\n")


def decode_test_cases(value: object, task_id: str, field: str) -> list[dict]:
    """A test-case list as the release stores it: JSON text, or (private cases) base64 of zlib of a
    pickled JSON string. The pickle is never loaded: its opcodes are read (`pickletools.genops`, which
    runs nothing) and only a pickle made of one string is accepted."""
    if isinstance(value, list):
        return value
    if not isinstance(value, str):
        raise ValueError(f"task {task_id}: {field} must be a JSON string or a list")
    if not value.strip():
        return []
    try:
        return json.loads(value)
    except ValueError:
        pass
    try:
        inflater = zlib.decompressobj()
        raw = inflater.decompress(base64.b64decode(value, validate=True), _MAX_DECODED_BYTES)
    except (binascii.Error, zlib.error, ValueError):
        raise ValueError(f"task {task_id}: {field} is neither JSON nor base64/zlib data") from None
    if inflater.unconsumed_tail:
        raise ValueError(f"task {task_id}: {field} expands beyond {_MAX_DECODED_BYTES >> 20} MiB")
    text = _pickled_string(raw)
    if text is None:
        raise ValueError(f"task {task_id}: {field} holds a pickle that is not a single string; refusing to "
                         "load it (only LiveCodeBench's pickled JSON text is read, never unpickled)")
    try:
        return json.loads(text)
    except ValueError:
        raise ValueError(f"task {task_id}: {field} decodes to text that is not JSON") from None


_FRAMING = {"PROTO", "FRAME", "MEMOIZE", "PUT", "BINPUT", "LONG_BINPUT", "STOP"}
_STRINGS = {"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE"}


def _pickled_string(raw: bytes) -> str | None:
    """The one str a pickle holds, read from its opcodes; None for anything else (objects, globals)."""
    found = []
    try:
        for opcode, arg, _ in pickletools.genops(raw):
            if opcode.name in _STRINGS:
                found.append(arg)
            elif opcode.name not in _FRAMING:
                return None
    except (ValueError, EOFError, UnicodeDecodeError):
        return None
    return found[0] if len(found) == 1 and isinstance(found[0], str) else None


def parse(row: dict) -> Problem:
    """One release row as a Problem (all cases public first, then private, as LiveCodeBench runs them)."""
    task_id = str(row["question_id"])
    metadata = row.get("metadata") or {}
    if isinstance(metadata, str):
        metadata = json.loads(metadata) if metadata.strip() else {}
    fn_name = metadata.get("func_name") or metadata.get("fn_name") if isinstance(metadata, dict) else None
    public = decode_test_cases(row.get("public_test_cases", []), task_id, "public_test_cases")
    private = decode_test_cases(row.get("private_test_cases", []), task_id, "private_test_cases")
    cases = []
    for i, case in enumerate(public + private):
        if not isinstance(case, dict) or not isinstance(case.get("input"), str) or not isinstance(
                case.get("output"), str):
            raise ValueError(f"task {task_id}: test case {i + 1} needs string 'input' and 'output' fields")
        if fn_name:  # functional: one JSON value per input line, a JSON output
            try:
                args = [json.loads(line) for line in case["input"].split("\n")]
                expected = json.loads(case["output"])
            except ValueError as exc:
                raise ValueError(f"task {task_id}: functional test case {i + 1} is not JSON ({exc})") from None
            cases.append({"input": case["input"], "expected": expected, "n_args": len(args)})
        else:
            cases.append({"input": case["input"], "expected": case["output"]})
    if not cases:
        raise ValueError(f"task {task_id}: no test cases (public_test_cases and private_test_cases are empty)")
    spec = {"fn_name": fn_name, "cases": cases, "n_public": len(public)}
    return Problem(task_id=task_id, kind="livecodebench", prompt=str(row.get("question_content", "")), spec=spec)


def load(rows: list[dict]) -> dict[str, Problem]:
    return {p.task_id: p for p in map(parse, rows)}


def grade(problem: Problem, program: str, limits: Limits) -> Verdict:
    """Every case in order, one sandboxed run each, stopping at the first that fails (as LiveCodeBench)."""
    spec = problem.spec
    cases, fn_name = spec["cases"], spec["fn_name"]
    total, last = 0.0, None
    for i, case in enumerate(cases):
        label = f"{'public' if i < spec['n_public'] else 'private'} case {i + 1}/{len(cases)}"
        if fn_name:
            status, why, last = _functional(program, fn_name, case, limits)
        else:
            status, why, last = _stdio(program, case, limits)
        total += last.time_s
        if status != "passed":
            return Verdict(status=status, detail=f"{label}: {why}"[:500], time_s=round(total, 4),
                           protections=last.protections)
    kind = "functional" if fn_name else "stdin/stdout"
    return Verdict(status="passed", detail=f"{len(cases)} {kind} case(s) passed (LiveCodeBench rules)",
                   time_s=round(total, 4), protections=last.protections)


def _functional(program: str, fn_name: str, case: dict, limits: Limits) -> tuple[str, str, Verdict]:
    calls = call_function(program, fn_name, [case["input"]], limits, encoded=False, post="tuple_as_list",
                          preamble=PREAMBLE, namespace={"__name__": "tmp_sol"},
                          solution_class="class Solution" in program)
    if calls.load_error:
        return "runtime_error", calls.load_error, calls.verdict
    if 0 in calls.errors:
        return "runtime_error", calls.errors[0], calls.verdict
    if calls.answered < 1:
        return calls.verdict.status if not calls.verdict.passed else "runtime_error", calls.verdict.detail, \
            calls.verdict
    got, expected = calls.outputs[0], case["expected"]
    if got == expected:  # both plain data: no code of the candidate's runs here
        return "passed", "", calls.verdict
    return "failed", f"wrong answer: expected {short(expected)}, got {short(got)}", calls.verdict


def stdio_program(program: str) -> str:
    """The solution as LiveCodeBench runs a stdin/stdout one: after its imports, `exit()` allowed."""
    return (PREAMBLE + "try:\n"
            f"    exec(compile({program!r}, '<program>', 'exec'), globals())\n"
            "except SystemExit:\n    pass\n")


def _stdio(program: str, case: dict, limits: Limits) -> tuple[str, str, Verdict]:
    room = limits.model_copy(update={"max_output_bytes": max(limits.max_output_bytes, 64 << 20),
                                     "file_size_mb": max(limits.file_size_mb, 64)})
    verdict = run_program(stdio_program(program), case["input"], room)
    if not verdict.passed:
        return verdict.status, verdict.detail, verdict
    mismatch = stdout_mismatch(verdict.stdout, case["expected"])
    if mismatch:
        return "failed", f"wrong answer: {mismatch}", verdict
    return "passed", "", verdict


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.strip().split("\n")]


def _decimals(line: str) -> list[Decimal] | None:
    try:
        return [Decimal(token) for token in line.split()]
    except (InvalidOperation, ValueError):
        return None


def stdout_mismatch(got: str, expected: str) -> str | None:
    """LiveCodeBench's stdout rule: after stripping the whole output and each line, the same number of
    lines, each equal as text or, token by token, as exact decimals ("1.50" = "1.5", "3" = "3.0").
    None when they match, else why not."""
    got_lines, want_lines = _lines(got), _lines(expected)
    if len(got_lines) != len(want_lines):
        return f"{len(got_lines)} output line(s), expected {len(want_lines)}"
    for k, (a, b) in enumerate(zip(got_lines, want_lines), 1):
        if a == b:
            continue
        da, db = _decimals(a), _decimals(b)
        try:
            if da is not None and db is not None and da == db:
                continue
        except InvalidOperation:  # a signalling NaN compared
            pass
        return f"line {k}: {short(a)} != {short(b)}"
    return None
