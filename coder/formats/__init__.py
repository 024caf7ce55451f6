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


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


__all__ = sorted(_EXPORTS)
