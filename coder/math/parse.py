"""A normalized answer string -> a structured value (scalar, equation, set, tuple, interval, matrix ...).

Runs inside the checker worker (sympy evaluation may blow up). Structure is decided on the
text first, so `{1,2}` (set), `(1,2)` (tuple / open interval) and `[1,2)` (interval) stay distinct.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import sympy

from coder.math.latex import parse_scalar
from coder.math.normalize import SET_CLOSE, SET_OPEN, AnswerParseError, normalize_answer
from coder.math.policy import DEFAULT_POLICY, AnswerPolicy

_OPEN, _CLOSE = "([{" + SET_OPEN, ")]}" + SET_CLOSE
_MAX_SHOWN = 300


def show_expr(expr) -> str:
    """A printable, length-bounded form of a sympy value (huge integers shown approximately)."""
    try:
        text = sympy.sstr(expr)
    except ValueError:  # an integer too long to print (e.g. 2004!)
        text = f"~{sympy.N(expr, 15)}"  # 15 significant digits say enough
    return text if len(text) <= _MAX_SHOWN else text[:_MAX_SHOWN] + "..."


@dataclass
class Scalar:
    expr: sympy.Expr

    def __str__(self) -> str:
        return show_expr(self.expr)


@dataclass
class Text:
    text: str  # a word answer ("Evelyn", "yes"): lower-cased, single-spaced

    def __str__(self) -> str:
        return self.text


@dataclass
class Percent:
    expr: sympy.Expr  # the number before "%"

    def __str__(self) -> str:
        return f"{show_expr(self.expr)}%"


@dataclass
class Equation:
    lhs: sympy.Expr
    rhs: sympy.Expr

    def __str__(self) -> str:
        return f"{show_expr(self.lhs)} = {show_expr(self.rhs)}"


@dataclass
class Items:
    kind: str  # "set" (unordered), "tuple" (ordered), "list" (bare "a, b": order not significant)
    items: list
    plus_minus: bool = False  # the two values of "a \pm b"

    def __str__(self) -> str:
        body = ", ".join(map(str, self.items))
        return {"set": "{%s}", "tuple": "(%s)", "list": "%s"}[self.kind] % body


@dataclass
class Ratio:
    a: sympy.Expr  # a:b, e.g. 7:32 (equal to 14:64 and to 7/32) or a time 12:00
    b: sympy.Expr

    def __str__(self) -> str:
        return f"{show_expr(self.a)}:{show_expr(self.b)}"


@dataclass
class BaseNumber:
    digits: str  # 204_5: digits as written, and their value
    base: int
    value: int

    def __str__(self) -> str:
        return f"{self.digits}_{self.base}"


@dataclass
class Interval:
    lo: sympy.Expr
    hi: sympy.Expr
    lo_open: bool
    hi_open: bool
    from_relation: bool = False  # written as an inequality ("x > 3"), not in interval notation

    def __str__(self) -> str:
        return f"{'(' if self.lo_open else '['}{show_expr(self.lo)}, {show_expr(self.hi)}{')' if self.hi_open else ']'}"


@dataclass
class Union:
    parts: list
    from_relation: bool = False

    def __str__(self) -> str:
        return " U ".join(map(str, self.parts))


@dataclass
class Matrix:
    rows: list[list[sympy.Expr]]

    def __str__(self) -> str:
        return "[" + "; ".join(", ".join(show_expr(x) for x in row) for row in self.rows) + "]"


def split_top(s: str, sep: str) -> list[str]:
    """Split on `sep` where it is outside every bracket pair."""
    parts, depth, start = [], 0, 0
    i = 0
    while i < len(s):
        c = s[i]
        if c in _OPEN:
            depth += 1
        elif c in _CLOSE:
            depth -= 1
        elif depth == 0 and s.startswith(sep, i):
            parts.append(s[start:i])
            start = i + len(sep)
            i = start
            continue
        i += 1
    parts.append(s[start:])
    return [p.strip() for p in parts]


def _wrapped(s: str) -> bool:
    """True when s[0] opens a bracket that closes at s[-1] (so `(a)(b)` is not wrapped)."""
    if len(s) < 2 or s[0] not in _OPEN or s[-1] not in _CLOSE:
        return False
    depth = 0
    for i, c in enumerate(s):
        depth += (c in _OPEN) - (c in _CLOSE)
        if depth == 0:
            return i == len(s) - 1
    return False


_MIXED = re.compile(r"^(-?)(\d+)\s*(?:\s(\d+)/(\d+)|\\frac\{(\d+)\}\{(\d+)\})$")
_RELATIONS = (("<=", sympy.Le), (">=", sympy.Ge), ("<", sympy.Lt), (">", sympy.Gt), ("!=", sympy.Ne))
_MATRIX_ENV = re.compile(r"\\begin\{([pbBvV]?matrix|array)\}(?:\{[lcr|]*\})?(.*?)\\end\{\1\}", re.S)


def _scalar_or_mixed(s: str) -> sympy.Expr:
    m = _MIXED.match(s)
    if m:  # "3 1/2", "3\frac{1}{2}": a mixed number, not 3 * 1/2
        sign, whole = m.group(1), int(m.group(2))
        num, den = (m.group(3), m.group(4)) if m.group(3) else (m.group(5), m.group(6))
        value = whole + sympy.Rational(int(num), int(den))
        return -value if sign else value
    return parse_scalar(s)


_FUNCTION_NAME = re.compile(r"[A-Za-z]\s*\(\s*[A-Za-z]\s*\)")


def _relation(s: str):
    """`x > 3`, `1 < x <= 2` -> an Interval/Union over the one variable; None when no relation."""
    s = s.replace("\\leq", "<=").replace("\\le", "<=").replace("\\geq", ">=").replace("\\ge", ">=")
    s = s.replace("\\lt", "<").replace("\\gt", ">").replace("\\neq", "!=").replace("\\ne", "!=")
    parts = re.split(r"(<=|>=|!=|<|>)", s)
    if len(parts) < 3:
        return None
    # 0 < f(x) < 1: f(x) names the one quantity bounded (the range of f), like a variable
    exprs = [sympy.Symbol(re.sub(r"\s", "", p)) if _FUNCTION_NAME.fullmatch(p.strip()) else parse_scalar(p)
             for p in parts[::2]]
    ops = dict(_RELATIONS)
    conds = [ops[op](exprs[k], exprs[k + 1]) for k, op in enumerate(parts[1::2])]
    free = set().union(*(e.free_symbols for e in exprs))
    if len(free) != 1:
        raise AnswerParseError(f"an inequality needs exactly one variable: {s!r}")
    try:
        solved = sympy.And(*conds).as_set()
    except (NotImplementedError, TypeError, ValueError) as exc:
        raise AnswerParseError(f"cannot solve the inequality {s!r} for its variable ({exc})") from None
    return _from_sympy_set(solved, s, from_relation=True)


def _from_sympy_set(st, source: str, from_relation: bool = False):
    if isinstance(st, sympy.Interval):
        return Interval(st.start, st.end, bool(st.left_open), bool(st.right_open), from_relation)
    if isinstance(st, sympy.Union):
        return Union([_from_sympy_set(a, source) for a in st.args], from_relation)
    if isinstance(st, sympy.FiniteSet):
        return Items("set", [Scalar(a) for a in st.args])
    raise AnswerParseError(f"cannot represent the solution set of {source!r}")


def _matrix_rows(body: str) -> list[list[sympy.Expr]]:
    rows = [r for r in re.split(r"\\\\", body) if r.strip()]
    table = [[parse_scalar(cell) for cell in row.split("&")] for row in rows]
    if not table or len({len(r) for r in table}) != 1:
        raise AnswerParseError(f"matrix rows have different lengths: {body!r}")
    return table


def matrix_value(s: str) -> Matrix:
    """One matrix (maybe inside brackets), or a sum/product of them: "A + B", "2A", "A B"."""
    envs = list(_MATRIX_ENV.finditer(s))
    if not envs:
        raise AnswerParseError(f"unsupported \\begin environment in {s!r}")
    if len(envs) == 1 and not _MATRIX_ENV.sub("", s).strip(" ()[]"):
        return Matrix(_matrix_rows(envs[0].group(2)))
    text, values = s, {}
    for k in reversed(range(len(envs))):  # placeholders Q0, Q1 ... that do not commute
        m = envs[k]
        text = text[:m.start()] + f" Q{k} " + text[m.end():]
        values[sympy.Symbol(f"Q{k}", commutative=False)] = sympy.ImmutableMatrix(_matrix_rows(m.group(2)))
    expr = parse_scalar(text, symbols={str(sym): sym for sym in values})
    try:
        value = expr.xreplace(values)
    except (TypeError, ValueError, sympy.ShapeError) as exc:
        raise AnswerParseError(f"cannot evaluate the matrix expression {s!r} ({exc})") from None
    if not isinstance(value, sympy.MatrixBase):
        raise AnswerParseError(f"{s!r} does not evaluate to one matrix")
    return Matrix(value.tolist())


def _bracketed(s: str, policy: AnswerPolicy):
    """`{..}`, `(..)`, `[..]`, `(..]` with a top-level comma inside (or empty set braces)."""
    inner = s[1:-1].strip()
    if s[0] == SET_OPEN and re.search(r"\\mid|:", inner):  # {x \mid x > 0}: the solution set
        condition = re.split(r"\\mid|:", inner, maxsplit=1)[1]
        value = _relation(condition)
        if value is None:
            raise AnswerParseError(f"set-builder {s!r} needs an inequality after '|'")
        return value
    items = split_top(inner, ",") if inner else []
    if s[0] in "{" + SET_OPEN and s[-1] in "}" + SET_CLOSE:
        if s[0] == SET_OPEN or len(items) > 1:  # {1, 3} with commas is a set even without backslashes
            return Items("set", _flat([parse_item(x, policy) for x in items]))
        return None  # a plain {group}
    if len(items) < 2 or s[0] == "{":
        return None
    closed_lo, closed_hi = s[0] == "[", s[-1] == "]"
    if len(items) == 2 and (s[0] != s[-1].translate(str.maketrans(")]", "(["))  # mixed: [a, b)
                            or (closed_lo and closed_hi)):
        lo, hi = (parse_scalar(x) for x in items)
        return Interval(lo, hi, not closed_lo, not closed_hi)
    return Items("tuple", [parse_item(x, policy) for x in items])


_NOT_WORDS = {"sqrt", "sin", "cos", "tan", "cot", "sec", "csc", "log", "exp", "sinh", "cosh", "tanh",
              "asin", "acos", "atan", "arcsin", "arccos", "arctan", "pi", "infty", "alpha", "beta", "gamma",
              "delta", "theta", "lambda", "sigma", "omega", "phi", "psi", "epsilon", "abs", "binomial"}


def _is_text(s: str) -> bool:
    """A word answer such as "Evelyn" or "no solution" (a 3+ letter word that is not math)."""
    words = s.split()
    return bool(re.fullmatch(r"[A-Za-z' ]+", s)) and any(
        len(w) >= 3 and w.lower().strip("'") not in _NOT_WORDS for w in words)


_LONE_NAME = re.compile(r"[A-Za-z](?:_\{?\w+\}?)?")
# Names of a quantity, not math: AB, |AB|, f(x), A:B, x_1, \angle ABC (see AnswerPolicy.named_lhs_matches_value).
# A ratio of two names is a name too: A:B, V_1:V_2, S_{ABC}:S, and of segments AB/CD, \frac{AB}{CD}
# (upper-case points only: \frac{x}{y} = 2 is an equation in x and y).
_SUB = r"(?:_\{?\w+\}?)?"
_NAMED = re.compile(rf"\|?[A-Za-z]+{_SUB}\|?|[A-Za-z]+\s*\([A-Za-z, ]*\)|[A-Za-z]+{_SUB}\s*:\s*[A-Za-z]+{_SUB}"
                    rf"|(?:m\s*)?\\angle\s*[A-Za-z]+|[A-Z]+{_SUB}\s*/\s*[A-Z]+{_SUB}|\\frac\{{[A-Z]+{_SUB}\}}\{{[A-Z]+{_SUB}\}}")


def _names_only(v) -> bool:
    """(x, y) or (p, q, r): a tuple of variable names on one side of an equation."""
    return isinstance(v, Items) and v.kind == "tuple" and all(
        isinstance(x, Scalar) and isinstance(x.expr, sympy.Symbol) for x in v.items)


def _equation(left: str, right: str, policy: AnswerPolicy):
    """`y = 2x+1` -> Equation; `p = 50%`, `v = (1, 2)`, `(p,q) = (3,2)`: a name labels the answer."""
    value = parse_item(right, policy)
    if isinstance(value, Scalar):
        if _LONE_NAME.fullmatch(left):
            return Equation(sympy.Symbol(re.sub(r"[{}]", "", left)), value.expr)
        if policy.named_lhs_matches_value and _NAMED.fullmatch(left):  # AB = 4: a name, not A*B
            return Equation(sympy.Symbol(" ".join(left.split())), value.expr)
        lhs = _scalar_or_mixed(left)
        if not (lhs.free_symbols or value.expr.free_symbols):  # 1/2 = 10/9: a computation, keep its result
            return value
        return Equation(lhs, value.expr)
    if _LONE_NAME.fullmatch(left) or policy.named_lhs_matches_value and _NAMED.fullmatch(left):
        return value
    if _wrapped(left):
        named = parse_item(left, policy)
        if _names_only(named):
            return value
        if _names_only(value):  # (3, 2) = (p, q)
            return named
    raise AnswerParseError(f"cannot read {left!r} = {right!r}: the right side is {type(value).__name__.lower()}")


_BASE_N = re.compile(r"(\d+)_\{?(\d+)\}?")


def _base_number(s: str) -> BaseNumber | None:
    """204_5, 1112122_{3}: a numeral in base 2..36 (digits must fit the base)."""
    m = _BASE_N.fullmatch(s)
    if not m or not 2 <= int(m.group(2)) <= 36:
        return None
    digits, base = m.group(1), int(m.group(2))
    try:
        return BaseNumber(digits, base, int(digits, base))
    except ValueError:
        raise AnswerParseError(f"{s!r}: the digit(s) of {digits} do not exist in base {base}") from None


def _ratio(s: str) -> Ratio | None:
    """7:32 or 12:00 (a colon between two numbers or expressions, not set-builder notation)."""
    parts = split_top(s, ":")
    if len(parts) != 2 or not all(parts) or "\\mid" in s:
        return None
    return Ratio(parse_scalar(parts[0]), parse_scalar(parts[1]))


def _flat(values: list) -> list:
    """Items of a list/set with "1 \\pm 2" entries spelled out as their two values."""
    out = []
    for v in values:
        out.extend(v.items if isinstance(v, Items) and v.kind == "list" and v.plus_minus else [v])
    return out


def parse_item(s: str, policy: AnswerPolicy = DEFAULT_POLICY):
    """One answer without top-level commas -> a structured value."""
    s = s.strip()
    if not s:
        raise AnswerParseError("empty item in a list")
    if s in {"\\emptyset", "\\varnothing", SET_OPEN + SET_CLOSE}:
        return Items("set", [])
    if "\\cup" in s:
        parts = [parse_item(p, policy) for p in split_top(s, "\\cup")]
        return Union(parts) if len(parts) > 1 else parts[0]
    if "\\begin" in s:
        return matrix_value(s)
    if _wrapped(s):
        value = _bracketed(s, policy)
        if value is not None:
            return value
    sides = split_top(s, "=")
    if len(sides) > 2:  # x = 5+5+1 = 11: a chain of equalities ends in the answer
        return parse_item(sides[-1], policy)
    if len(sides) == 2:
        return _equation(*sides, policy)
    rel = _relation(s) if re.search(r"[<>]|\\[lg]eq?\b|\\[lg]t\b|\\neq?\b", s) else None
    if rel is not None:
        return rel
    if "\\pm" in s or "\\mp" in s:  # "1 \pm \sqrt2": both values, order not significant
        plus = s.replace("\\pm", "+").replace("\\mp", "-")
        minus = s.replace("\\pm", "-").replace("\\mp", "+")
        return Items("list", [Scalar(parse_scalar(plus)), Scalar(parse_scalar(minus))], plus_minus=True)
    if s.endswith("%"):
        return Percent(_scalar_or_mixed(s[:-1]))
    if _is_text(s):
        return Text(" ".join(s.lower().split()))
    value = _base_number(s) or _ratio(s)
    return value if value is not None else Scalar(_scalar_or_mixed(s))


def parse_answer(text: str, policy: AnswerPolicy = DEFAULT_POLICY):
    """Normalize and parse one answer into a structured value; raises AnswerParseError."""
    s = normalize_answer(text, policy)
    if not s:
        raise AnswerParseError(f"empty answer {text!r}")
    # "x \in [1, 2]", "x = 1, 2", "x = 1 \pm 2": the variable name is not part of the answer.
    s = re.sub(r"^[A-Za-z](?:_\{?\w+\}?)?\s*\\in\s+", "", s)
    s = re.sub(r"^[A-Za-z]\s*\(\s*[A-Za-z]\s*\)\s*=\s*(?=[^=]+$)", "", s)  # "f(x) = 2x" -> "2x"
    m = re.match(r"^[A-Za-z](?:_\{?\w+\}?)?\s*=\s*(.+)$", s)
    if m and "=" not in m.group(1) and (len(split_top(m.group(1), ",")) > 1 or re.search(r"\\[pm][mp]\b", s)):
        s = m.group(1)
    items = split_top(s, ",")
    if len(items) > 1:
        return Items("list", _flat([parse_item(x, policy) for x in items]))
    return parse_item(s, policy)
