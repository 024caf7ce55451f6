"""Which format a problem file is in, and the loader and grader of each."""
from __future__ import annotations

from pathlib import Path

from coder.formats import evalplus, livecodebench
from coder.problems import Problem
from coder.sandbox import Limits, Verdict

FORMATS = ("evalplus", "livecodebench")


def detect_format(row: dict) -> str | None:
    """The format of a problem file from its first row; None for the per-row formats of `coder.problems`."""
    if evalplus.is_evalplus(row):
        return "evalplus"
    if livecodebench.is_livecodebench(row):
        return "livecodebench"
    return None


def load_format(fmt: str, rows: list[dict], path: Path, *, base_only: bool = False, limits: Limits | None = None,
                workers: int | None = None) -> dict[str, Problem]:
    """Problems by task id from the rows of a file in format `fmt` (see FORMATS)."""
    if fmt == "evalplus":
        return evalplus.load(rows, path, base_only=base_only, limits=limits, workers=workers)
    if base_only:
        raise ValueError(f"--base-only applies to evalplus problem files only (this one is {fmt})")
    if fmt == "livecodebench":
        return livecodebench.load(rows)
    raise ValueError(f"unknown problem format {fmt!r} (choose from {', '.join(FORMATS)})")


def grade_format(problem: Problem, program: str, limits: Limits) -> Verdict:
    """Verdict for one program on a problem loaded by `load_format`."""
    grader = {"evalplus": evalplus.grade, "livecodebench": livecodebench.grade}[problem.kind]
    return grader(problem, program, limits)
