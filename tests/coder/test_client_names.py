"""Which of the program's names the tests use: the grader skips parsing the tests when none is in their
text (`client._names_among`), and must find exactly what the parse finds."""
from __future__ import annotations

import pytest

from coder.sandbox import Limits, run_tests
from coder.sandbox import client

LIMITS = Limits(timeout_s=10)

CASES = [
    # (tests, candidates, used by name)
    ("def check(candidate):\n    assert candidate(2) == 4\n", {"square", "List"}, set()),
    ("assert square(2) == 4\n", {"square", "cube"}, {"square"}),
    ("assert 'square' in 'squares'  # square\n", {"square"}, set()),  # text and comments are not names
    ("xs = [1]\nxs.square = 1\n", {"square"}, set()),  # nor attributes
    ("def square(x):\n    return x\nassert square(1) == 1\n", {"square"}, {"square"}),
    ("assert \ufb01le_count(3) == 3\n", {"file_count"}, {"file_count"}),  # NFKC: the name is file_count
    ("assert square(\n", {"square"}, set()),  # tests that do not parse use no names
]


@pytest.mark.parametrize("tests, candidates, expected", CASES)
def test_names_among_is_the_parse_restricted_to_the_candidates(tests, candidates, expected):
    found = client._names_among(tests, frozenset(candidates))
    assert found == expected
    assert found == client._names_used(tests) & frozenset(candidates)


def test_a_function_the_tests_name_in_compatibility_characters_is_still_recorded():
    # `ﬁle_count` in the tests is the program's `file_count` to Python: skipping the parse on the ASCII
    # spelling's absence would leave the tests no recorded function to call.
    program = "def file_count(n):\n    return n\n"
    verdict = run_tests(program, "assert \ufb01le_count(3) == 3\n", LIMITS)
    assert verdict.status == "passed", verdict.detail
    wrong = run_tests("def file_count(n):\n    return n + 1\n", "assert \ufb01le_count(3) == 3\n", LIMITS)
    assert wrong.status == "failed", wrong.detail
