"""AnswerPolicy: each option changes exactly the verdict it documents; the defaults are stated here."""
from __future__ import annotations

import pytest
from pydantic import ValidationError

from coder import AnswerPolicy, check_answer


def _eq(pred, ref, **options) -> bool:
    return check_answer(pred, ref, policy=AnswerPolicy(**options)).equivalent


def test_decimal_comma():
    assert _eq("1,22", "1.22") and _eq("0,111", "0.111") and _eq("1000,99", "1000.99")  # auto
    assert not _eq("0,111", "111") and _eq("1,234", "1234")  # 0,111 is never a thousands grouping
    assert not _eq("1,2", "1.2") and _eq("1,2", "2, 1")  # one digit after the comma: a list
    assert _eq("1,2", "1.2", decimal_comma="always")
    assert not _eq("1,22", "1.22", decimal_comma="never") and _eq("1,22", "22, 1", decimal_comma="never")


def test_semicolons_separate_items():
    assert _eq("(1; 2)", "(1, 2)") and _eq("3; 4", "4, 3")
    assert not _eq("3; 4", "4, 3", semicolon_separates=False)
    assert not _eq("a=4,b=1;a=6,b=1", "(4,1),(6,1)", semicolon_separates=False)


def test_tuple_vs_set():
    assert not _eq("(1, 2)", r"\{1, 2\}")
    assert _eq("(1, 2)", r"\{2, 1\}", tuple_matches_set=True)
    assert not _eq("(1, 2)", r"\{1, 3\}", tuple_matches_set=True)


def test_named_left_side():
    for named in ("AB = 4", "|AB| = 4", "f(x) = 4", "A:B = 4", r"m\angle ABC = 4"):
        assert _eq(named, "4"), named
        assert not _eq(named, "5"), named
    assert _eq("P_1:P_2 = 5:9", "5:9") and _eq(r"\frac{PQ}{RS} = 3", "3")  # ratios of names are names
    assert not _eq("AB = 4", "4", named_lhs_matches_value=False)
    assert not _eq("P_1:P_2 = 5:9", "5:9", named_lhs_matches_value=False)
    assert not _eq(r"\frac{PQ}{RS} = 3", "3", named_lhs_matches_value=False)
    assert _eq("x = 4", "4", named_lhs_matches_value=False)  # a lone variable always labels the value
    assert not _eq("AB = 4, CD = 5", "AB = 5, CD = 4")  # names still tell the values apart


def test_inequality_vs_interval():
    assert _eq(r"[5, \infty)", r"x \geq 5")  # default: an interval answers an inequality reference
    assert not _eq(r"x \geq 5", r"[5, \infty)")  # ... but not the other way round
    assert _eq(r"x \geq 5", r"[5, \infty)", inequality_vs_interval="both")
    assert not _eq(r"[5, \infty)", r"x \geq 5", inequality_vs_interval="never")
    assert _eq(r"x \geq 5", r"5 \le x", inequality_vs_interval="never")  # two inequalities always compare


def test_bare_percent():
    assert _eq("28", r"28\%") and _eq("0.28", r"28\%")
    assert not _eq("28", r"28\%", percent_matches_bare=False) and _eq("0.28", r"28\%", percent_matches_bare=False)


def test_bad_policy_is_a_clear_error():
    with pytest.raises(ValidationError, match="decimal_comma"):
        AnswerPolicy(decimal_comma="sometimes")
    with pytest.raises(ValidationError, match="extra"):
        AnswerPolicy(decimal_commas="auto")
    with pytest.raises(TypeError, match="AnswerPolicy"):
        check_answer("1", "1", policy={"decimal_comma": "auto"})
