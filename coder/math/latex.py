"""One scalar LaTeX/plain-text expression -> sympy expression (runs inside the checker worker).

LaTeX is rewritten into sympy's Python-like syntax by a small recursive converter, then read by
`sympy.parse_expr` with a whitelisted namespace: answers are untrusted text, and parse_expr uses eval.
"""
from __future__ import annotations

import re
from fractions import Fraction

import sympy
from sympy.parsing.sympy_parser import (
    auto_number,
    auto_symbol,
    convert_xor,
    factorial_notation,
    implicit_multiplication_application,
    parse_expr,
    rationalize,
)

from coder.math.normalize import AnswerParseError

_FUNCS = {
    "sin", "cos", "tan", "cot", "sec", "csc", "asin", "acos", "atan", "acot", "sinh", "cosh", "tanh",
    "exp", "log", "sqrt", "root", "Abs", "binomial", "factorial", "gcd", "lcm", "floor", "ceiling",
}
_LATEX_FUNCS = {"sin", "cos", "tan", "cot", "sec", "csc", "sinh", "cosh", "tanh", "exp", "ln", "log",
                "arcsin", "arccos", "arctan", "gcd", "lcm", "max", "min", "det"}
_RENAME = {"arcsin": "asin", "arccos": "acos", "arctan": "atan", "ln": "log", "max": "Max", "min": "Min"}
_GREEK = {"alpha", "beta", "gamma", "delta", "epsilon", "varepsilon", "zeta", "eta", "theta", "vartheta",
          "iota", "kappa", "lambda", "mu", "nu", "xi", "rho", "sigma", "tau", "upsilon", "phi", "varphi",
          "chi", "psi", "omega", "Gamma", "Delta", "Theta", "Lambda", "Xi", "Sigma", "Phi", "Psi", "Omega"}
_SYMBOLS = {"cdot": "*", "times": "*", "ast": "*", "div": "/", "pi": " pi ", "infty": " oo ",
            "infinity": " oo ", "cdots": "", "ldots": "", "dots": "", "lfloor": " floor(", "rfloor": ")",
            "lceil": " ceiling(", "rceil": ")"}
_SUBSCRIPT = str.maketrans({"+": "p", "-": "m", "*": "t", "/": "d"})  # a_{n-1} and a_{n+1} stay apart
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ALLOWED_CHARS = re.compile(r"[A-Za-z0-9_+\-*/()., !\t]*")

_NAMESPACE: dict = {"__builtins__": {}}
for _name in _FUNCS | {"Integer", "Float", "Rational", "Number", "Symbol", "Function", "Max", "Min", "pi", "oo",
                      "Sum", "Product"}:
    _NAMESPACE[_name] = getattr(sympy, _name)
_LOCALS = {"e": sympy.E, "E": sympy.E, "i": sympy.I, "I": sympy.I, "pi": sympy.pi, "oo": sympy.oo}
_TRANSFORMS = (auto_symbol, auto_number, factorial_notation, convert_xor,
               implicit_multiplication_application, rationalize)


def _group(s: str, i: int) -> tuple[str, int]:
    """s[i] == '{': the group's content and the index after its closing brace."""
    depth = 0
    for j in range(i, len(s)):
        depth += {"{": 1, "}": -1}.get(s[j], 0)
        if depth == 0:
            return s[i + 1:j], j + 1
    raise AnswerParseError(f"unbalanced braces in {s!r}")


def _arg(s: str, i: int) -> tuple[str, int]:
    """One LaTeX argument at s[i:]: a {group}, a \\command, or a single character."""
    while i < len(s) and s[i] == " ":
        i += 1
    if i >= len(s):
        raise AnswerParseError(f"missing argument at the end of {s!r}")
    if s[i] == "{":
        return _group(s, i)
    m = re.match(r"\\[a-zA-Z]+|\\.", s[i:])
    if m:
        return m.group(0), i + len(m.group(0))
    return s[i], i + 1


def _command(s: str, i: int, name: str, out: list[str]) -> int:
    """Append the sympy text for \\name (its arguments start at s[i]); returns the next index."""
    if name == "frac":
        a, i = _arg(s, i)
        b, i = _arg(s, i)
        out.append(f"(({latex_to_sympy_text(a)})/({latex_to_sympy_text(b)}))")
    elif name == "binom":
        a, i = _arg(s, i)
        b, i = _arg(s, i)
        out.append(f"binomial({latex_to_sympy_text(a)},{latex_to_sympy_text(b)})")
    elif name == "sqrt":
        index = None
        if s[i:].lstrip().startswith("["):
            j = s.index("[", i)
            k = s.find("]", j)
            if k < 0:
                raise AnswerParseError(f"unclosed \\sqrt[...] in {s!r}")
            index, i = s[j + 1:k], k + 1
        a, i = _arg(s, i)
        a = latex_to_sympy_text(a)
        out.append(f"root({a},{latex_to_sympy_text(index)})" if index else f"sqrt({a})")
    elif name in {"sum", "prod"}:
        i = _big_operator(s, i, name, out)
    elif name == "log" and s[i:].lstrip().startswith("_"):
        base, i = _arg(s, s.index("_", i) + 1)
        x, i = _arg(s, i)
        out.append(f"log({latex_to_sympy_text(x)},{latex_to_sympy_text(base)})")
    elif name in _LATEX_FUNCS:
        i = _function(s, i, name, out)
    elif name in _SYMBOLS:
        out.append(_SYMBOLS[name])
    elif name in _GREEK:
        out.append(" lamda " if name == "lambda" else f" {name.replace('var', '')} ")
    elif name in {"mathrm", "mathbf", "mathit", "text", "operatorname", "boxed"}:
        a, i = _arg(s, i)
        out.append(f"({latex_to_sympy_text(a)})")
    else:
        raise AnswerParseError(f"unsupported LaTeX command \\{name} in {s!r}")
    return i


_BARE_ARG = re.compile(r"\s*(\d*\.?\d*(?:[A-Za-z]|\\[a-zA-Z]+)|\d+(?:\.\d+)?)")
_TRIG = {"sin", "cos", "tan", "cot", "sec", "csc"}


def _function(s: str, i: int, name: str, out: list[str]) -> int:
    """\\sin x, \\sin^2 x, \\cos(2x), \\sin^{-1} x: the function applied to its argument, so that
    "\\cos x \\sin y" is cos(x)*sin(y) and not cos(x*sin(y))."""
    fname, power = _RENAME.get(name, name), None
    m = re.match(r"\s*\^\s*", s[i:])
    if m:
        power, i = _arg(s, i + m.end())
        if power.strip() == "-1" and name in _TRIG:  # \sin^{-1} is arcsin
            fname, power = "a" + name, None
    j = i
    while j < len(s) and s[j] == " ":
        j += 1
    if j < len(s) and s[j] == "(":
        depth, k = 0, j
        for k in range(j, len(s)):
            depth += {"(": 1, ")": -1}.get(s[k], 0)
            if depth == 0:
                break
        if depth != 0:
            raise AnswerParseError(f"unbalanced parentheses after \\{name} in {s!r}")
        arg, i = s[j + 1:k], k + 1
    elif j < len(s) and s[j] == "{":
        arg, i = _group(s, j)
    elif (m := _BARE_ARG.match(s, i)) and m.group(1):
        arg, i = m.group(1), m.end()
    else:
        raise AnswerParseError(f"\\{name} has no argument in {s!r}")
    out.append(f" {fname}({latex_to_sympy_text(arg)})" + (f"**({latex_to_sympy_text(power)})" if power else ""))
    return i


def _big_operator(s: str, i: int, name: str, out: list[str]) -> int:
    """\\sum_{k=0}^{n} body -> Sum(body, (k, 0, n)); the body runs to the next top-level + or -."""
    m = re.match(r"\s*_\s*", s[i:])
    if not m:
        raise AnswerParseError(f"\\{name} needs a lower limit such as _{{k=1}} in {s!r}")
    lower, i = _arg(s, i + m.end())
    m = re.match(r"\s*\^\s*", s[i:])
    if not m or "=" not in lower:
        raise AnswerParseError(f"\\{name} needs limits such as _{{k=1}}^{{n}} in {s!r}")
    upper, i = _arg(s, i + m.end())
    var, start = lower.split("=", 1)
    depth, j = 0, i
    while j < len(s) and not (depth == 0 and s[j] in "+-=" and s[i:j].strip()):
        depth += {"{": 1, "(": 1, "[": 1, "}": -1, ")": -1, "]": -1}.get(s[j], 0)
        j += 1
    body = s[i:j]
    if not body.strip():
        raise AnswerParseError(f"\\{name} has nothing to add up in {s!r}")
    op = "Sum" if name == "sum" else "Product"
    out.append(f"{op}(({latex_to_sympy_text(body)}),({latex_to_sympy_text(var)},"
               f"{latex_to_sympy_text(start)},{latex_to_sympy_text(upper)}))")
    return j


_REPEATING = re.compile(r"(\d*)\.(\d*)\\overline\{(\d+)\}")


def _repeating(m: re.Match) -> str:
    """0.1\\overline{6} -> (1/6): whole + fixed digits + the repeating block over 9...90...0."""
    whole, fixed, rep = m.group(1) or "0", m.group(2), m.group(3)
    value = Fraction(int(whole)) + Fraction(int(fixed or "0"), 10 ** len(fixed)) \
        + Fraction(int(rep), (10 ** len(rep) - 1) * 10 ** len(fixed))
    return f"(({value.numerator})/({value.denominator}))"


def latex_to_sympy_text(s: str) -> str:
    """Rewrite one LaTeX scalar (\\frac, \\sqrt, ^{}, _{}, |x|, \\pi ...) into sympy source text."""
    s = _REPEATING.sub(_repeating, s)
    out: list[str] = []
    i, n = 0, len(s)
    while i < n:
        c = s[i]
        if c == "\\":
            m = re.match(r"\\([a-zA-Z]+|.)", s[i:], re.S)
            if m is None:
                raise AnswerParseError(f"a lone backslash at the end of {s!r}")
            i = _command(s, i + len(m.group(0)), m.group(1), out)
        elif c == "{":
            inner, i = _group(s, i)
            out.append(f"({latex_to_sympy_text(inner)})")
        elif c == "^":
            a, i = _arg(s, i + 1)
            out.append(f"**({latex_to_sympy_text(a)})")
        elif c == "_":  # x_1, a_{n}: part of the symbol's name
            a, i = _arg(s, i + 1)
            sub = latex_to_sympy_text(a).translate(_SUBSCRIPT)
            out.append("_" + re.sub(r"\W", "", sub))
        elif c == "|":
            j = s.find("|", i + 1)
            if j < 0:
                raise AnswerParseError(f"unmatched '|' in {s!r}")
            out.append(f"Abs({latex_to_sympy_text(s[i + 1:j])})")
            i = j + 1
        else:
            out.append({"[": "(", "]": ")"}.get(c, c))
            i += 1
    return "".join(out)


def _check_safe(text: str, source: str) -> None:
    if not _ALLOWED_CHARS.fullmatch(text):
        bad = sorted(set(re.sub(r"[A-Za-z0-9_+\-*/()., !\t]", "", text)))
        raise AnswerParseError(f"unexpected characters {''.join(bad)!r} in {source!r}")
    if "__" in text or re.search(r"[A-Za-z_)]\s*\.|\.\s*[A-Za-z_]", text):  # no attribute access
        raise AnswerParseError(f"not a math expression: {source!r}")
    for name in _IDENT.findall(text):
        if name.startswith("_"):
            raise AnswerParseError(f"not a math expression: {source!r}")


_KNOWN_WORDS = {w.lower() for w in _NAMESPACE} | {w.lower() for w in _GREEK} | {"lamda", "ceiling", "floor"}
_LETTER_RUN = re.compile(r"(?<![A-Za-z0-9_])[A-Za-z]{4,}")


def _check_not_prose(text: str, source: str) -> None:
    # "exec(1)" or "AZYUK2A" is writing, not the product e*x*e*c; four letters in a row that name
    # no function or Greek letter are read as a word (multi-letter variables are rare in answers).
    for word in _LETTER_RUN.findall(text):
        if word.lower() not in _KNOWN_WORDS:
            raise AnswerParseError(f"{source!r} reads as words ({word!r}), not as math")


def parse_scalar(source: str, symbols: dict | None = None) -> sympy.Expr:
    """A sympy expression for one scalar answer; AnswerParseError names the text when it can't.
    `symbols` adds names the text may use (matrix placeholders)."""
    source = source.strip()
    if not source:
        raise AnswerParseError("empty expression")
    text = latex_to_sympy_text(source).strip()
    _check_safe(text, source)
    _check_not_prose(text, source)
    try:
        expr = parse_expr(text, local_dict=dict(_LOCALS) | (symbols or {}), global_dict=dict(_NAMESPACE),
                          transformations=_TRANSFORMS, evaluate=True)
    except (SyntaxError, TypeError, ValueError, AttributeError, NameError, ZeroDivisionError,
            IndexError, KeyError, sympy.SympifyError) as exc:
        raise AnswerParseError(f"cannot read {source!r} as math ({type(exc).__name__}: {exc})") from None
    if not isinstance(expr, sympy.Expr) and not (symbols and isinstance(expr, sympy.Basic)):
        raise AnswerParseError(f"{source!r} is not a single expression (got {type(expr).__name__})")
    return expr
