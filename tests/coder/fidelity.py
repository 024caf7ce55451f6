"""Shared by the test_fidelity_* files: grade honest problems through proofcode and through a plain
`python` run of prompt + completion + tests (the reference), and compare the verdicts.

A case is (name, prompt, correct completion, subtly wrong completion, tests defining check(candidate)).
"""
from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

from coder.sandbox import Limits, run_tests

LIMITS = Limits(timeout_s=20)


def plain_python(program: str, tests: str, entry_point: str) -> bool:
    """What a plain interpreter says: prompt + completion + tests + check(entry_point), exit status 0."""
    source = f"{program}\n\n{tests}\n\ncheck({entry_point})\n"
    run = subprocess.run([sys.executable, "-c", source], capture_output=True, timeout=60)
    return run.returncode == 0


def entry_of(prompt: str) -> str:
    return [line.split("(")[0][4:] for line in prompt.splitlines() if line.startswith("def ")][-1]


def grade_all(cases: list[tuple], modes=("compatible", "strict")) -> dict:
    """{(case name, "correct"|"wrong"): (reference passed, {mode: Verdict})}, all run concurrently."""
    jobs = []
    for name, prompt, correct, wrong, tests in cases:
        for label, completion in (("correct", correct), ("wrong", wrong)):
            jobs.append((name, label, prompt, prompt + completion, tests, entry_of(prompt)))

    def one(job):
        name, label, prompt, program, tests, entry = job
        verdicts = {mode: run_tests(program, tests, LIMITS, entry_point=entry, prelude=prompt, verdicts=mode)
                    for mode in modes}
        return (name, label), (plain_python(program, tests, entry), verdicts)

    with ThreadPoolExecutor(4) as pool:
        return dict(pool.map(one, jobs))


def check_case(results: dict, name: str) -> None:
    """The correct completion passes and the wrong one fails in plain python, and proofcode agrees."""
    for label, expected in (("correct", True), ("wrong", False)):
        reference, verdicts = results[(name, label)]
        assert reference is expected, f"{name} {label}: the fixture itself is wrong (plain python: {reference})"
        for mode, verdict in verdicts.items():
            assert verdict.passed is reference, f"{name} {label} ({mode}): {verdict.status} {verdict.detail}"
            if verdict.passed:
                assert verdict.verified == "replay", f"{name} {label} ({mode}): decided by {verdict.verified}"


def fidelity_suite(cases: list[tuple], modes=("compatible", "strict")):
    """(fixture, test) for a test file of cases: `results, test_... = fidelity_suite(CASES)`."""
    import pytest

    @pytest.fixture(scope="module", name="results")
    def results_fixture():
        return grade_all(cases, modes)

    @pytest.mark.parametrize("name", [c[0] for c in cases])
    def test_verdict_matches_plain_python(results, name):
        check_case(results, name)

    return results_fixture, test_verdict_matches_plain_python


def plain_program(program: str, tests: str) -> bool:
    """What a plain interpreter says of `program` followed by statement `tests` (MBPP style): exit status 0."""
    return subprocess.run([sys.executable, "-c", program + "\n" + tests], capture_output=True, timeout=60).returncode == 0


def check_pair(name: str, correct: str, wrong: str, tests: str) -> None:
    """The correct program passes and the wrong one fails in plain python, and proofcode agrees in both modes."""
    for program, expected in ((correct, True), (wrong, False)):
        assert plain_program(program, tests) is expected, f"{name}: the fixture itself is wrong"
        for mode in ("compatible", "strict"):
            verdict = run_tests(program, tests, LIMITS, verdicts=mode)
            assert verdict.passed is expected, f"{name} {mode} ({'correct' if expected else 'wrong'}): {verdict}"
