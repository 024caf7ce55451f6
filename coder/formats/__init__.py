"""Benchmark problem files graded natively: evalplus (HumanEval+ / MBPP+) and LiveCodeBench.

    fmt = detect_format(first_row)                       # "evalplus", "livecodebench" or None
    problems = load_format(fmt, rows, path, base_only=False, limits=Limits())
    verdict = grade_format(problem, program, limits)     # problem.kind names its format
"""
from __future__ import annotations

_EXPORTS = {
    "FORMATS": ".dispatch",
    "detect_format": ".dispatch",
    "load_format": ".dispatch",
    "grade_format": ".dispatch",
}


from proofcode_common import lazy_exports  # noqa: E402

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())


__all__ = sorted(_EXPORTS)
