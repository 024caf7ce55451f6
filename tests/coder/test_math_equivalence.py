"""check_answer on a table of answer pairs: LaTeX, percent, units, intervals, sets, tuples, matrices."""
from __future__ import annotations

import pytest

from coder import AnswerVerdict, check_answer

EQUIVALENT = [
    ("18", "18.0"), ("1,234", "1234"), ("1{,}234", "1234"), ("-7", "-7.00"), ("0", "0.0"),
    ("1/2", "0.5"), (r"\frac{1}{2}", "0.5"), (r"\dfrac{3}{4}", "0.75"), (r"\tfrac12", "1/2"),
    (r"\frac{\sqrt{3}}{2}", r"\frac{\sqrt3}{2}"), (r"\sqrt{2}/2", r"\frac{1}{\sqrt{2}}"),
    (r"\sqrt[3]{8}", "2"), (r"2\sqrt{2}", r"\sqrt{8}"), (r"\boxed{42}", "42"),
    (r"The answer is \boxed{\frac{1}{3}}", r"\frac13"), ("$5", "5"), (r"\$5.00", "5"), ("5 dollars", "5"),
    (r"5\text{ dollars}", "5"), ("12 cm", "12"), ("30^\\circ", "30"), (r"30^{\circ}", "30"), ("45°", "45"),
    ("50%", "0.5"), (r"50\%", "50"), ("12.5%", "1/8"), ("3 1/2", "7/2"), (r"3\frac{1}{2}", "3.5"),
    ("-3 1/2", "-3.5"), ("1.5e3", "1500"), (r"1.5 \times 10^{3}", "1500"), ("2.5E-2", "0.025"),
    (r"\left(1, 2\right)", "(1,2)"), (r"\{1, 2\}", r"\{2, 1\}"), ("{3,1,2}", r"\{1,2,3\}"),
    (r"\pm 2", "2, -2"), (r"1 \pm \sqrt{2}", r"1-\sqrt2, 1+\sqrt2"), ("[1, 2)", "[1,2)"),
    (r"(-\infty, 3]", r"x \le 3"), (r"(3, \infty)", "x > 3"), ("(1, 3)", "1 < x < 3"),
    (r"(1, 2) \cup (3, 4)", r"(3,4)\cup(1,2)"), (r"x \in [0, 1]", "[0,1]"),
    (r"\begin{pmatrix} 1 & 2 \\ 3 & 4 \end{pmatrix}", r"\begin{bmatrix}1&2\\3&4\end{bmatrix}"),
    (r"\begin{pmatrix} 1 \\ -2 \end{pmatrix}", "(1, -2)"), (r"\left(\begin{array}{cc} 1 & 0 \\ 0 & 1 \end{array}\right)", r"\begin{pmatrix}1&0\\0&1\end{pmatrix}"), ("x=2", "2"), ("2", "x = 2"), ("2 = x", "x=2"),
    ("y = 2x+1", "y=1+2x"), ("2y = 4x + 2", "y = 2x + 1"), ("x = 1, 2", "1, 2"),
    ("2x+2", "2(x+1)"), ("x^2-1", "(x-1)(x+1)"), (r"\sin^2 x + \cos^2 x", "1"), ("e^{i\\pi}", "-1"),
    ("3+4i", "4i+3"), (r"\pi/2", r"\frac{\pi}{2}"), (r"\log_2 8", "3"), ("|-5|", "5"), ("5!", "120"),
    (r"\binom{5}{2}", "10"), (r"\emptyset", r"\{\}"), ("2 and 3", "3, 2"), ("1/3", "0.33333333"),
    (r"\left[ 0, \frac{1}{2} \right]", "[0, 0.5]"), (r"a_1 + a_{2}", "a_2 + a_1"),
    (r"0.\overline{3}", "1/3"), (r"0.1\overline{6}", r"\frac16"), (r"\text{Evelyn}", "evelyn"), ("1 000", "1000"),
    ("f(x) = 2x", "2x"), (r"x = 1 \pm \sqrt{2}", r"1\pm\sqrt2"), ("x = 2 or x = 3", "3, 2"),
    ("x=2 and y=3", "y=3, x=2"), ("p = 50%", "0.5"), (r"(-\infty,-2)\cup(2,\infty)", "x^2 > 4"),
    ("2x = 4", "x=2"), (r"2,\!500", "2500"), (r"\$32,\!348", "32348"), (r"\tan 45^\circ", "1"),
    (r"(-\infty,2)\cup(2,\infty)", r"x \ne 2"), (r"\mathbb{R}", r"(-\infty, \infty)"), (r"\langle 1, 2 \rangle", "(1,2)"),
    (r"\lfloor 3.5 \rfloor", "3"), (r"(0, \infty)", r"\{x \mid x > 0\}"), (r"6 \text{ cm}^2", "6"), ("(C)", r"\text{(C)}"), ("no solution", r"\text{No solution}"),
]

DIFFERENT = [
    (r"\frac{1}{2004!}", r"\frac{1}{2006!}"), (r"\pm 2021", "2021"), ("{1,2}", "(1,2)"), ("1/3", "0.3333"),
    ("(1, 2)", "[1, 2]"), ("(1, 2]", "(1, 2)"), ("[1,2)", "(1,2]"), ("(1, 2)", "(2, 1)"), ("18", "17"),
    ("1,234", "1235"), ("0", "1e-20"), ("x^2", "x^3"), ("2x+1", "2x-1"), (r"\sqrt{2}", "1.414"),
    (r"\pi", "3.14"), ("3", "-3"), (r"\{1, 2\}", r"\{1, 2, 3\}"), ("50%", "0.05"), ("x = 2", "y = 3"),
    (r"\begin{pmatrix}1&2\\3&4\end{pmatrix}", r"\begin{pmatrix}1&3\\2&4\end{pmatrix}"), ("x > 3", "x >= 3"),
    (r"\{2\}", "2"), ("1, 2", "1"), ("3+4i", "3-4i"),
    ("x=3, y=2", "x=2, y=3"), ("A", "B"), ("Evelyn", "Emily"), (r"-\infty", r"\infty"), ("1/0", "1"), ("0/0", "0"),
    ("1450001", "1,450,000"), ("1000001", "1000000.0"), (r"2^{30}+1", "1073741824"),  # integers: no tolerance
]


@pytest.mark.parametrize(("predicted", "reference"), EQUIVALENT)
def test_equivalent_pairs(predicted, reference):
    verdict = check_answer(predicted, reference)
    assert verdict.equivalent, verdict
    assert verdict.reason in {"exact", "numeric within tol", "symbolic"}
    assert verdict.error is None


@pytest.mark.parametrize(("predicted", "reference"), DIFFERENT)
def test_different_pairs(predicted, reference):
    verdict = check_answer(predicted, reference)
    assert not verdict.equivalent, verdict
    assert verdict.reason.startswith("different: "), verdict
    # symmetric: swapping the two sides must not change the decision
    assert not check_answer(reference, predicted).equivalent


def test_reasons_name_how_it_was_decided():
    assert check_answer("1/2", "0.5").reason == "exact"
    assert check_answer("x^2-1", "(x-1)(x+1)").reason == "symbolic"
    assert check_answer("1/3", "0.33333333").reason == "numeric within tol"
    assert check_answer("{1,2}", "(1,2)").reason == "different: a set vs a tuple"
    assert check_answer(r"\pm 2021", "2021").reason == "different: a list vs a number"


def test_tolerance_is_a_parameter():
    assert not check_answer("1/3", "0.3333").equivalent
    assert check_answer("1/3", "0.3333", rel_tol=1e-3).reason == "numeric within tol"
    assert check_answer("0.3333", "0.33333", rel_tol=1e-3).equivalent  # fast path, plain numbers
    assert not check_answer("0", "1e-20").equivalent
    assert check_answer("0", "1e-20", abs_tol=1e-12).equivalent
    # An absolute tolerance is what would wrongly merge tiny values; the default has none.
    assert check_answer(r"\frac{1}{2004!}", r"\frac{1}{2006!}", abs_tol=1e-9).equivalent


def test_parsed_forms_are_reported():
    verdict = check_answer(r"\boxed{\dfrac{6}{4}}", "1.5")
    assert (verdict.predicted_parsed, verdict.reference_parsed) == ("3/2", "3/2")
    big = check_answer(r"\frac{1}{2004!}", r"\frac{1}{2006!}")
    assert big.predicted_parsed.startswith("~1.875") and "E-5749" in big.predicted_parsed


@pytest.mark.parametrize("bad", ["@@", r"\frac{1}{", r"\unknowncommand{2}", "", "__import__('os')", "x.__class__",
                                 "1 .evalf", "(1).func"])
def test_unparseable_answers_give_a_verdict_not_an_exception(bad):
    verdict = check_answer(bad, "1")
    assert isinstance(verdict, AnswerVerdict)
    assert not verdict.equivalent
    assert verdict.reason == "unparseable"
    assert "predicted" in verdict.error


def test_unparseable_reference_is_named_in_the_error():
    verdict = check_answer("1", "1 @ 2")
    assert verdict.reason == "unparseable" and "reference answer '1 @ 2'" in verdict.error


def test_missing_or_huge_answers_and_bad_arguments():
    assert check_answer(None, "1").reason == "unparseable"
    assert "longer than" in check_answer("1" * 20_000, "1").error
    with pytest.raises(ValueError, match="timeout must be > 0"):
        check_answer("1", "1", timeout=0)
    with pytest.raises(ValueError, match="rel_tol"):
        check_answer("1", "1", rel_tol=-1)


def test_numbers_from_json_rows_need_not_be_strings():
    assert check_answer(18, "18").reason == "exact"
    assert check_answer(0.5, r"\frac{1}{2}").equivalent
    assert not check_answer(17, 18).equivalent


def test_python_names_and_prose_are_unparseable_not_products_of_letters():
    # parse_expr evals; builtins are out of its namespace, and a 4+ letter word is writing, not e*x*e*c.
    for prose in ("exec(1)", "AZYUK2A", "the area is 5"):
        verdict = check_answer(prose, "1")
        assert verdict.reason == "unparseable" and "reads as words" in verdict.error, verdict
    assert check_answer("2xy", "2yx").equivalent  # short runs of letters are still variables
