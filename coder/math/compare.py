"""Equivalence of two parsed answers: exact, then numeric within tolerance, then symbolic.

Runs inside the checker worker. Every comparison returns (equal, reason); a container's reason is
its weakest element's ("exact" < "symbolic" < "numeric within tol").
"""
from __future__ import annotations

import random

import sympy

from coder.math.normalize import AnswerParseError
from coder.math.parse import (BaseNumber, Equation, Interval, Items, Matrix, Percent, Ratio, Scalar, Text, Union,
                              parse_answer, show_expr)
from coder.math.policy import DEFAULT_POLICY, AnswerPolicy

_RANK = {"exact": 0, "symbolic": 1, "numeric within tol": 2}
_DIGITS = 30  # evalf precision: far below any sane tolerance, and no float underflow (1/2004!)


def _weakest(reasons: list[str]) -> str:
    return max(reasons, key=lambda r: _RANK.get(r, 0), default="exact")


def _close(a: sympy.Expr, b: sympy.Expr, tol: tuple[float, float]) -> bool | None:
    """|a-b| <= max(rel*max(|a|,|b|), abs) for numbers; None if either is not a finite number."""
    rel, abs_ = (sympy.Rational(str(t)) for t in tol)
    if a.is_Integer and b.is_Integer:  # tolerance is for rounded decimals, not for counts
        return a == b
    if a.is_Rational and b.is_Rational:  # exact: 1/3 vs 3333/10000 decided without rounding
        return bool(abs(a - b) <= max(rel * max(abs(a), abs(b)), abs_))
    va, vb = a.evalf(_DIGITS), b.evalf(_DIGITS)
    if not (va.is_number and vb.is_number) or va.has(sympy.oo, -sympy.oo, sympy.zoo, sympy.nan) \
            or vb.has(sympy.oo, -sympy.oo, sympy.zoo, sympy.nan):
        return None
    diff, size = sympy.Abs(va - vb).evalf(_DIGITS), sympy.Max(sympy.Abs(va), sympy.Abs(vb)).evalf(_DIGITS)
    if not (diff.is_Float or diff.is_zero) or not (size.is_Float or size.is_zero):
        return None
    return bool(diff <= max(rel * size, abs_))


def _probe(a: sympy.Expr, b: sympy.Expr, tol) -> str | None:
    """Evaluate both at random points; a description of a point where they clearly differ, or None."""
    symbols = sorted(a.free_symbols | b.free_symbols, key=str)
    rng = random.Random(1234)  # fixed: the same answers always get the same verdict
    for _ in range(3):
        point = {s: sympy.Rational(rng.randint(11, 199), rng.randint(7, 97)) for s in symbols}
        close = _close(a.subs(point), b.subs(point), tol)
        if close is False:
            where = ", ".join(f"{s}={v}" for s, v in point.items())
            return f"different: values differ at {where}"
    return None


def scalars(a: sympy.Expr, b: sympy.Expr, tol) -> tuple[bool, str]:
    """Two sympy expressions: exact, numeric within tol, or symbolic equality."""
    if a == b:
        return True, "exact"
    if not (a.free_symbols or b.free_symbols):
        close = _close(a, b, tol)
        if close is None:
            return False, f"different: {show_expr(a)} vs {show_expr(b)}"
        if not close:
            return False, "different: values differ beyond tolerance"
        if not (a.is_Rational and b.is_Rational) and sympy.simplify(a - b) == 0:
            return True, "symbolic"
        return True, "numeric within tol"
    differs = _probe(a, b, tol)
    if differs:
        return False, differs
    if sympy.expand(a - b) == 0 or sympy.simplify(a - b) == 0:  # expand is the cheap try
        return True, "symbolic"
    return False, "different: could not show the expressions are equal"


def _equations(a: Equation, b: Equation, tol) -> tuple[bool, str]:
    if a.lhs == b.lhs and a.rhs == b.rhs:
        return True, "exact"
    da, db = a.lhs - a.rhs, b.lhs - b.rhs
    if db == 0:
        return (da == 0), ("symbolic" if da == 0 else "different: equations differ")
    ratio = sympy.simplify(da / db)
    if ratio.is_number and ratio != 0 and ratio.is_finite:
        return True, "symbolic"  # same equation up to a nonzero factor (x=2 vs 2=x, 2y=2x vs y=x)
    return False, "different: equations differ"


def _solved_value(e: Equation):
    """`x = 2` -> 2 (the answer's value) when one side is a lone variable absent from the other."""
    for var, value in ((e.lhs, e.rhs), (e.rhs, e.lhs)):
        if isinstance(var, sympy.Symbol) and var not in value.free_symbols:
            return value
    return None


def _sequences(xs: list, ys: list, ordered: bool, tol, policy: AnswerPolicy = DEFAULT_POLICY) -> tuple[bool, str]:
    if len(xs) != len(ys):
        return False, f"different: {len(xs)} items vs {len(ys)}"
    reasons, unused = [], list(range(len(ys)))
    for k, x in enumerate(xs):
        candidates = [k] if ordered else unused
        for j in candidates:
            ok, why = compare(x, ys[j], tol, policy)
            if ok:
                reasons.append(why)
                if not ordered:
                    unused.remove(j)
                break
        else:
            return False, f"different: {x} has no equal counterpart" if not ordered else \
                f"different: item {k + 1} ({x} vs {ys[k]})"
    return True, _weakest(reasons)


def _solution_set(v: Items) -> bool:
    """A set, or a list of tuples (the solutions of a system): repeating a member does not change it.
    A list of numbers keeps its multiplicity (the sides 2, 2, 3 are not the sides 2, 3, 3)."""
    return v.kind == "set" or bool(v.items) and all(isinstance(x, Items) and x.kind == "tuple" for x in v.items)


def _distinct(items: list, tol, policy: AnswerPolicy) -> list:
    out: list = []
    for x in items:
        if not any(compare(x, y, tol, policy)[0] for y in out):
            out.append(x)
    return out


def _intervals(a: Interval, b: Interval, tol) -> tuple[bool, str]:
    if (a.lo_open, a.hi_open) != (b.lo_open, b.hi_open):
        return False, "different: interval ends differ in open/closed"
    return _sequences([Scalar(a.lo), Scalar(a.hi)], [Scalar(b.lo), Scalar(b.hi)], True, tol)


def _kind(v) -> str:
    if isinstance(v, Items):
        return {"set": "a set", "tuple": "a tuple", "list": "a list"}[v.kind]
    return {Scalar: "a number", Percent: "a percentage", Equation: "an equation", Interval: "an interval",
            Union: "a union of intervals", Matrix: "a matrix", Text: "a text answer", Ratio: "a ratio",
            BaseNumber: "a base-n number"}[type(v)]


def _ratios(a: Ratio, b: Ratio, tol) -> tuple[bool, str]:
    """2:4 equals 1:2 (same proportion); with a zero second term (a time such as 12:00) the terms must match."""
    if a.b.is_zero or b.b.is_zero:
        return _sequences([Scalar(a.a), Scalar(a.b)], [Scalar(b.a), Scalar(b.b)], True, tol)
    return scalars(a.a / a.b, b.a / b.b, tol)


def _base_numbers(a, b) -> tuple[bool, str]:
    """204_5 equals 204_5 (and 54_10 written in base n); a plain 204 stands for the digits without the base."""
    if type(a) is BaseNumber and type(b) is BaseNumber:
        same = a.value == b.value
        return same, "exact" if same else f"different: {a} vs {b}"
    base, other = (a, b) if type(a) is BaseNumber else (b, a)
    if type(other) is Scalar and other.expr.is_Integer and str(other.expr) == base.digits:
        return True, "exact"
    return False, f"different: {base} vs {other}"


def _written_as_relation(v) -> bool | None:
    """True for "x > 3", False for interval notation ("(3, oo)", a pair), None for anything else."""
    if isinstance(v, (Interval, Union)):
        return v.from_relation
    return False if isinstance(v, Items) and v.kind == "tuple" and len(v.items) == 2 else None


def _relation_vs_interval(a, b, policy: AnswerPolicy) -> str | None:
    """Why an inequality and an interval differ under `policy.inequality_vs_interval`, or None."""
    ra, rb = _written_as_relation(a), _written_as_relation(b)
    if ra is None or rb is None or ra == rb or policy.inequality_vs_interval == "both":
        return None
    if policy.inequality_vs_interval == "never" or ra:  # the prediction is an inequality, the reference not
        return "different: an inequality vs interval notation (policy inequality_vs_interval)"
    return None


def compare(a, b, tol, policy: AnswerPolicy = DEFAULT_POLICY) -> tuple[bool, str]:
    """Equivalence of predicted `a` and reference `b` (see module docstring)."""
    ta, tb = type(a), type(b)
    if ta is Scalar and tb is Scalar:
        return scalars(a.expr, b.expr, tol)
    why = _relation_vs_interval(a, b, policy)
    if why:
        return False, why
    if ta is Ratio and tb is Ratio:
        return _ratios(a, b, tol)
    if BaseNumber in (ta, tb):
        return _base_numbers(a, b)
    if ta is Text and tb is Text:
        return (True, "exact") if a.text == b.text else (False, f"different: {a.text!r} vs {b.text!r}")
    if ta is Percent or tb is Percent:
        return _percent(a, b, tol, policy.percent_matches_bare)
    if {ta, tb} == {Ratio, Scalar}:  # 7:32 vs 7/32
        r, x = (a, b) if ta is Ratio else (b, a)
        if r.b.is_zero:
            return False, f"different: {r} vs {x}"
        return scalars(r.a / r.b, x.expr, tol)
    if ta is Equation and tb is Equation:
        return _equations(a, b, tol)
    if ta is Equation or tb is Equation:
        eq, other = (a, b) if ta is Equation else (b, a)
        value = _solved_value(eq)
        if value is None:
            return False, f"different: an equation vs {_kind(other)}"
        return compare(Scalar(value), other, tol, policy) if eq is a else compare(other, Scalar(value), tol, policy)
    if ta is Items and tb is Items:
        if {a.kind, b.kind} == {"set", "tuple"} and not policy.tuple_matches_set:
            return False, "different: a set vs a tuple"
        ordered = "tuple" in (a.kind, b.kind) and "set" not in (a.kind, b.kind)
        if not ordered:  # each side by its own kind: a list of numbers keeps its repeats
            xs, ys = (_distinct(v.items, tol, policy) if _solution_set(v) else v.items for v in (a, b))
            return _sequences(xs, ys, False, tol, policy)
        return _sequences(a.items, b.items, True, tol, policy)
    if ta is Interval and tb is Interval:
        return _intervals(a, b, tol)
    if {ta, tb} == {Interval, Items}:  # (1, 2) is both a pair and an open interval
        iv, items = (a, b) if ta is Interval else (b, a)
        if items.kind == "tuple" and len(items.items) == 2 and all(type(x) is Scalar for x in items.items):
            return _intervals(iv, Interval(items.items[0].expr, items.items[1].expr, True, True), tol)
    if ta is Union and tb is Union:
        return _sequences(a.parts, b.parts, False, tol, policy)
    if ta is Matrix and tb is Matrix:
        if (len(a.rows), len(a.rows[0])) != (len(b.rows), len(b.rows[0])):
            return False, "different: matrix shapes differ"
        return _sequences([Scalar(x) for r in a.rows for x in r], [Scalar(x) for r in b.rows for x in r],
                          True, tol)
    if {ta, tb} == {Matrix, Items}:  # a column/row vector written as a tuple
        m, items = (a, b) if ta is Matrix else (b, a)
        flat = [Scalar(x) for r in m.rows for x in r]
        if items.kind != "set" and (len(m.rows) == 1 or len(m.rows[0]) == 1):
            return _sequences(flat, items.items, True, tol)
    return False, f"different: {_kind(a)} vs {_kind(b)}"


def _percent(a, b, tol, bare: bool) -> tuple[bool, str]:
    """50% equals 50% and 0.5, and a bare 50 when `bare` (answers to "what percent" often omit the sign)."""
    if type(a) is Percent and type(b) is Percent:
        return scalars(a.expr, b.expr, tol)
    p, other = (a, b) if type(a) is Percent else (b, a)
    if type(other) is not Scalar:
        return False, f"different: a percentage vs {_kind(other)}"
    for value in (p.expr / 100, p.expr) if bare else (p.expr / 100,):
        ok, why = scalars(value, other.expr, tol)
        if ok:
            return True, why
    return False, f"different: {p} is neither {other} nor {other}%"


def check_parsed(predicted: str, reference: str, rel_tol: float, abs_tol: float,
                 policy: AnswerPolicy = DEFAULT_POLICY) -> dict:
    """Parse and compare two raw answers; the AnswerVerdict fields as a dict (never raises on bad input)."""
    out = {"equivalent": False, "reason": "unparseable", "predicted_parsed": None,
           "reference_parsed": None, "error": None}
    parsed = []
    for name, text in (("predicted", predicted), ("reference", reference)):
        try:
            parsed.append(parse_answer(text, policy))
        except AnswerParseError as exc:
            out["error"] = f"could not parse the {name} answer {text!r}: {exc}"
            return out
        out[f"{name}_parsed"] = str(parsed[-1])
    out["equivalent"], out["reason"] = compare(*parsed, (rel_tol, abs_tol), policy)
    return out

