"""Run untrusted Python in a fresh confined process forked from a pre-imported server.

    verdict = run_tests(program, tests, Limits(timeout_s=5))   # function + its tests
    verdict = run_program(program, stdin, expected_output=out)  # stdin/stdout problems
    sandbox_info()                                              # which protections are active

Exports are lazy so the fork server (which imports coder.sandbox.harness) stays small and forks fast.
"""
from __future__ import annotations

_EXPORTS = {
    "run_tests": ".client",
    "run_program": ".client",
    "sandbox_info": ".client",
    "Limits": ".limits",
    "Verdict": ".limits",
    "SandboxUnavailable": ".limits",
}


from proofcode_common import lazy_exports  # noqa: E402

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())


__all__ = sorted(_EXPORTS)
