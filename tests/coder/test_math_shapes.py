"""Answer shapes from real model outputs: chained equalities, named sides, ratios, base-n, \\sum, matrices ..."""
from __future__ import annotations

import pytest

from coder import check_answer

EQUAL = [
    ("(p,q)=(3,2)", "(3,2)"), ("(3, 2)", "(3,2) = (p, q)"), (r"(x, y) = (5, 8) \quad \text{and} \quad (8, 5)", "(5, 8), (8, 5)"),
    ("x = 5+5+1 = 7 = 11", "x = 11"), (r"1 = \zzz = x = 0", "0"), (r"\frac{1}{2} = \frac{10}{9}", "10/9"),
    (r"x \approx 11", "11"), (r"x = 1/3 \approx 0.33", "1/3"), (r"x = 5+5+1 = 1/3 \approx 11", "x = 1/3"),
    ("7:32", r"\frac{7}{32}"), ("7:32", "14:64"), ("12:00", "12:00"),
    (r"125\textnormal{ miles}", "125"), (r"15\mbox{ cm}^2", "15"), (r"0.06 \text{ yuan}", "0.06"),
    (r"F_n = \sum_{k=0}^{n-1} F_k F_{n-k-1}", r"F_n = \sum_{k=0}^{n-1} F_{n-k-1} F_k"), (r"\sum_{k=1}^{4} k^2", "30"),
    (r"\begin{pmatrix}1 & 2 \\ 3 & 4\end{pmatrix} + \begin{pmatrix}5 & 6 \\ 7 & 8\end{pmatrix}",
     r"\begin{pmatrix}6 & 8 \\ 10 & 12\end{pmatrix}"),
    (r"\begin{pmatrix}1 & 2 \\ 3 & 4\end{pmatrix} \begin{pmatrix}0 & 1 \\ 1 & 0\end{pmatrix}", r"\begin{pmatrix}2 & 1 \\ 4 & 3\end{pmatrix}"),
    (r"2\begin{pmatrix}1 \\ 2\end{pmatrix}", "(2, 4)"),
    ("19, 46, and 82", r"19, 46, \text{ and } 82"), ("19, 46, or 82", "82, 46, 19"),
    (r"11,\! 111,\! 111,\! 100", "11111111100"), (r"14 {, }916", "14916"),
    ("204_{5}", "204_5"), ("1112122_3", "1112122_{3}"), ("204_5", "204"),
    ("[-2, 7]", r"-2 \\le x \\le 7"), (r"\\left(\\frac{1}{5},\\frac{1}{6}\\right)", "(0.2, 1/6)"),
    (r"\cos x \sin y", r"\sin y \cos x"), (r"\sin^2 x + \cos^2 x", "1"), (r"\sin^{-1} 1", r"\pi/2"), (r"\tan^2(y)+1", r"\sec^2(y)"),
    (r"\{1\pm\sqrt{5},-2\}", r"\{-2, 1+\sqrt5, 1-\sqrt5\}"), (r"x = \frac{1}{2}, x = 1 \pm \sqrt{2}", r"1+\sqrt2, \frac12, 1-\sqrt2"),
    # solutions of a system written per solution: "a=4,b=1; a=6,b=1" is the tuples (a, b)
    ("(4,1),(6,1)", "a=4,b=1;a=6,b=1"), ("(4,1),(6,1)", "b=1, a=4; b=1, a=6"), ("(2,9),(9,2)", "(9,2)or(2,9)"),
    # a ratio of named quantities labels the value like "AB = 4"
    ("5:9", "P_{1}:P_{2}=5:9"), ("5:9", "T_{ABC}:T=5:9"), (r"\frac{2}{\sqrt{3}}", r"\frac{PQ}{RS}=\frac{2}{\sqrt{3}}"),
    ("3", "XY/ZW = 3"),
    # a bounded function value is the range it names
    ("(-1, 2)", "-1 < h(t) < 2"), ("[0, 3)", r"0 \le g(x) < 3"),
    # a repeated solution does not change a solution set (a list of tuples, or a set)
    ("(1,5),(5,1),(1, 5)", "(5,1),(1,5)"), (r"\{3,3,8\}", r"\{8,3\}"),
    (r"a_{37} = 19, \quad a_3 = 2", "a_3 = 2, a_{37} = 19"), (r"\frac{1}{3}.", "1/3"), ("5\\", "5"), (r"\text{(C)}", r"\text{C}"),
]
DIFFERENT = [
    ("7 = 11a+c", "11a+c"), ("a + 3z = 0", "0"), ("2x + z = 1", "1"), ("12:00", "1:00"), ("7:32", "32:7"),
    ("(p, q) = (2, 3)", "(3, 2)"), ("x=3, y=2", "x=2, y=3"), ("1112112_3", "1112122_3"), ("204_5", "54"),
    (r"F_n = \sum_{k=0}^{n-1} F_k F_{n-k-1}", r"F_n = \sum_{k=0}^{n-2} F_k F_{n-k-2}"), (r"a_{n-1}", r"a_{n+1}"),
    (r"\begin{pmatrix}0 & 1 \\ 1 & 0\end{pmatrix} \begin{pmatrix}1 & 2 \\ 3 & 4\end{pmatrix}", r"\begin{pmatrix}2 & 1 \\ 4 & 3\end{pmatrix}"),
    ("19, 46, and 82", "21, 36, and 82"), ("32, 349", "32349"), ("0,111", "111"), ("1, 2, 3, ...", "1, 2, 3"),
    (r"2^{10}.", "2"), (r"\cos x \sin y", r"\cos(x \sin y)"), (r"\pm 2021", "2021"),
    ("(1,4),(1,6)", "a=4,b=1;a=6,b=1"), ("(4,1),(6,1)", "b=4,a=1;b=6,a=1"), ("(4,1),(6,1)", "a=4,b=1;c=6,b=1"),
    ("5:9", "P_{1}:P_{2}=9:5"), ("2", r"\frac{a}{b}=2"), ("(0, 3)", r"0 \le g(x) < 3"), ("(0,1)", "0 < x f(x) < 1"),
    ("2, 2, 5", "2, 5, 5"), ("4, 4, 6", "4, 6"), (r"\{4, 6\}", "4, 4, 6"),
]


@pytest.mark.parametrize(("predicted", "reference"), EQUAL)
def test_equal_shapes(predicted, reference):
    verdict = check_answer(predicted, reference)
    assert verdict.equivalent, verdict


@pytest.mark.parametrize(("predicted", "reference"), DIFFERENT)
def test_different_shapes(predicted, reference):
    for a, b in ((predicted, reference), (reference, predicted)):
        verdict = check_answer(a, b)
        assert not verdict.equivalent, verdict


@pytest.mark.parametrize("answer", ["5\\", "\\", "x = \\", r"\frac{1}{2}\\", "\\boxed{", "$", r"\sum_{k=1}", r"\sin"])
def test_broken_latex_gives_a_verdict_not_a_crash(answer):
    verdict = check_answer(answer, "5")
    assert verdict.reason != "error", verdict
    assert verdict.error is None or "checking failed" not in verdict.error


def test_prose_is_unparseable_not_different():
    verdict = check_answer("The midpoints form a hexagon whose area is 12", "12")
    assert verdict.reason == "unparseable" and not verdict.equivalent


def test_base_n_digits_must_exist_in_the_base():
    verdict = check_answer("1292_3", "1")
    assert verdict.reason == "unparseable" and "base 3" in verdict.error


def test_huge_sum_and_exponent_time_out_instead_of_hanging():
    for answer in (r"\sum_{k=1}^{10^{12}} k!", r"\begin{pmatrix}1 & 1 \\ 1 & 0\end{pmatrix}^{10^{9}} \begin{pmatrix}1 \\ 1\end{pmatrix}"):
        verdict = check_answer(answer, "1", timeout=1.0)
        assert not verdict.equivalent and verdict.reason in {"timeout", "error", "unparseable", "different: a number vs a matrix"} \
            or verdict.reason.startswith("different"), verdict
