"""Run untrusted Python in a fresh confined process forked from a pre-imported server.

    verdict = run_tests(program, tests, Limits(timeout_s=5))   # function + its tests
    verdict = run_program(program, stdin, expected_output=out)  # stdin/stdout problems
    sandbox_info()                                              # which protections are active
"""
from coder.sandbox.client import run_program, run_tests, sandbox_info
from coder.sandbox.limits import Limits, SandboxUnavailable, Verdict

__all__ = ["Limits", "SandboxUnavailable", "Verdict", "run_program", "run_tests", "sandbox_info"]
