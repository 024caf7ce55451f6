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


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


__all__ = sorted(_EXPORTS)
