"""Which format a problem file is in, and the loader and grader of each."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the format modules load only for their files: `proofcode grade` on HumanEval needs neither
    from coder.problems import Problem
    from coder.sandbox import Limits, Verdict

FORMATS = ("evalplus", "livecodebench")


def is_evalplus(row: dict) -> bool:
    return isinstance(row, dict) and "base_input" in row


def is_livecodebench(row: dict) -> bool:
    return isinstance(row, dict) and "question_id" in row and (
        "public_test_cases" in row or "private_test_cases" in row)


def detect_format(row: dict) -> str | None:
    """The format of a problem file from its first row; None for the per-row formats of `coder.problems`."""
    if is_evalplus(row):
        return "evalplus"
    if is_livecodebench(row):
        return "livecodebench"
    return None


def load_format(fmt: str, rows: list[dict], path: Path, *, base_only: bool = False, limits: Limits | None = None,
                workers: int | None = None) -> dict[str, Problem]:
    """Problems by task id from the rows of a file in format `fmt` (see FORMATS)."""
    from coder.formats import evalplus, livecodebench

    if fmt == "evalplus":
        return evalplus.load(rows, path, base_only=base_only, limits=limits, workers=workers)
    if base_only:
        raise ValueError(f"--base-only applies to evalplus problem files only (this one is {fmt})")
    if fmt == "livecodebench":
        return livecodebench.load(rows)
    raise ValueError(f"unknown problem format {fmt!r} (choose from {', '.join(FORMATS)})")


def grade_format(problem: Problem, program: str, limits: Limits) -> Verdict:
    """Verdict for one program on a problem loaded by `load_format`."""
    from coder.formats import evalplus, livecodebench

    grader = {"evalplus": evalplus.grade, "livecodebench": livecodebench.grade}[problem.kind]
    return grader(problem, program, limits)
