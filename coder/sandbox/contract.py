"""What the client and the fork server's side agree on, in a module neither side's heavy imports come with:
the grader imports this, not the harness (its recorder and replay) or `protect` (ctypes, seccomp).

The names compiled sources carry, what Python's parser and compiler raise, the marker the replay leaves
in a verdict it could not decide, and the protections grading requires.
"""
from __future__ import annotations

import marshal

TESTS_FILE = "<tests>"
CANDIDATE_FILE = "<candidate>"
PROGRAM_FILE = "<program>"

# What Python's parser and compiler raise on bad source (MemoryError / RecursionError: nesting too deep).
UNPARSABLE = (SyntaxError, ValueError, MemoryError, RecursionError)

# In a verdict's detail when the replay met an answer it cannot rebuild (a library's object).
UNREPLAYABLE = " [--verdicts compatible grades it from a run in the sandbox]"

REQUIRED = ("seccomp", "landlock", "no_network", "rlimits")


def compile_marshalled(source, filename: str = TESTS_FILE) -> bytes | None:
    """`marshal` bytes of `source` (text or a syntax tree) compiled as `filename` (what the job's `*_code`
    fields carry), or None when it does not compile; the child then compiles it and reports the error."""
    try:
        return marshal.dumps(compile(source, filename, "exec"))
    except UNPARSABLE:
        return None
