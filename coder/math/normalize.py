"""Text clean-up of math answers before parsing: pure string work, no sympy, safe in any process.

`normalize_answer` turns "\\boxed{\\$1{,}234.50}" or "5 dollars" into a canonical LaTeX-ish string;
`plain_number` recognises answers that are just a number so they compare without the worker pool.
"""
from __future__ import annotations

import re
from fractions import Fraction

from coder.math.boxed import last_boxed_group
from coder.math.policy import DEFAULT_POLICY, AnswerPolicy


class AnswerParseError(ValueError):
    """An answer that cannot be read as math; the message names the answer and what was wrong."""


_UNICODE = {
    "\u2212": "-", "\u2013": "-", "\u00d7": r"\times ", "\u00f7": r"\div ", "\u00b7": r"\cdot ",
    "\u221a": r"\sqrt", "\u03c0": r"\pi ", "\u221e": r"\infty ", "\u00b0": "", "\u00b1": r"\pm ",
    "\u2213": r"\mp ", "\u2264": r"\le ", "\u2265": r"\ge ", "\u2260": r"\ne ", "\u222a": r"\cup ",
    "\u2208": r"\in ", "\u2205": r"\emptyset ", "\u00a0": " ", "\u2009": " ", "\u2248": r"\approx ",
    "\u00b2": "^2", "\u00b3": "^3", "\u20ac": " ", "\u00a3": " ", "\u00a5": " ",
}
# Set braces survive normalisation as these two characters, so `\{1,2\}` stays a set
# while `{...}` keeps meaning a LaTeX group.
SET_OPEN, SET_CLOSE = "\u2983", "\u2984"

_SPACING = re.compile(r"(?<!\\)\\(?:[,;:! ]|quad|qquad|displaystyle|textstyle|limits)|~")
_SIZING = re.compile(r"\\(?:left|right|big|Big|bigg|Bigg)[lr]?(?![a-zA-Z])")
_DEGREES = re.compile(r"\^\s*\{?\s*\\circ\s*\}?|\\circ|\\degree|\^\s*\{\s*\\text\{\s*o\s*\}\s*\}")
_TEXT_CMD = re.compile(r"\\(?:text|textnormal|textbf|textit|textrm|mathrm|mbox|mathbf|operatorname)\s*\{([^{}]*)\}"
                       r"(\^\{?\d\}?)?")  # the exponent of \text{cm}^2
_LIST_WORDS = re.compile(r"\s+(?:or|and)\s+|(?<=[)\]\u2984])\s*(?:or|and)\s*(?=[(\[\u2983])", re.IGNORECASE)
_THOUSANDS = re.compile(r"^[-+]?[1-9]\d{0,2}(?:,\d{3})+(?:\.\d+)?$")  # not 0,111
_SPACED_THOUSANDS = re.compile(r"^[-+]?\d{1,3}(?: \d{3})+(?:\.\d+)?$")
_NUMBER = re.compile(r"^[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d{1,3})?$")  # <= 1e999: prints well under int-str limits

# Words after a number that are units, not math: "5 dollars", "12 cm", "3 apples".
_MATH_WORDS = {
    "pi", "sqrt", "sin", "cos", "tan", "cot", "sec", "csc", "log", "ln", "exp", "arcsin", "arccos",
    "arctan", "sinh", "cosh", "tanh", "oo", "infty", "i", "e", "x", "y", "z", "n", "k",
}
_SHORT_UNITS = {"m", "cm", "mm", "km", "g", "kg", "mg", "s", "ms", "h", "hr", "hrs", "min", "ml", "l",
                "ft", "in", "yd", "mi", "lb", "lbs", "oz", "mph", "kmh", "sq", "pm", "am", "usd"}
_UNIT_WORD = re.compile(r"[a-zA-Z]+\.?(?:\^\{?\d\}?)?")


def _strip_units(s: str) -> str:
    """"5 dollars", "3 cm^2" -> the number; words that may be math (pi, x, sin) are kept."""
    digits = [m.start() for m in re.finditer(r"(?<!\^)(?<!\^\{)\d", s)]  # not exponents of cm^2
    cut = digits[-1] + 1 if digits else -1
    while 0 < cut < len(s) and s[cut] in "})":
        cut += 1
    tail = s[cut:].split()
    if cut < 0 or not tail or not all(_UNIT_WORD.fullmatch(w) for w in tail):
        return s
    words = [re.match(r"[a-zA-Z]+", w).group(0).lower() for w in tail]
    if all((len(w) >= 3 or w in _SHORT_UNITS) and w not in _MATH_WORDS for w in words):
        return s[:cut].strip()
    return s


def _unwrap_text(m: re.Match) -> str:
    inner = m.group(1).strip()
    # \text{cm}, \text{ dollars}: units go; \mathrm{x}, \operatorname{lcm}: keep the content.
    if re.fullmatch(r"[a-zA-Z ]*", inner) and (len(inner) >= 3 or inner.lower() in _SHORT_UNITS or not inner):
        if inner.lower() not in _MATH_WORDS:
            return " " if inner.lower() not in {"or", "and"} else ", "
    return inner + (m.group(2) or "")


_DOUBLED = re.compile(r"\\\\(?=(?:left|right|[dtc]?frac|sqrt|le|leq|ge|geq|lt|gt|ne|neq|pi|infty|cdot|times|text|"
                      r"mathrm|cup|in|pm|mp|boxed|circ|approx)(?![a-zA-Z]))")
_NAME = re.compile(r"[A-Za-z](?:_\{?\w+\}?)?")
_DECIMAL_COMMA = re.compile(r"([-+]?\d+),(\d+)")


def _approx(s: str) -> str:
    """"x \\approx 11" -> 11; "x = 1/3 \\approx 0.33" -> x = 1/3: the exact part wins over the rounding."""
    parts = re.split(r"\\approx(?![a-zA-Z])", s)
    if len(parts) == 1:
        return s
    head = parts[0].strip()
    return parts[1].strip() if not head or _NAME.fullmatch(head) else head


_ASSIGNMENT = re.compile(r"\s*([A-Za-z](?:_\{?\w+\}?)?)\s*=\s*([^=,;]+?)\s*")


def _assignment_groups(s: str) -> str:
    """"p=5, q=2; p=7, q=2" -> "(5, 2), (7, 2)": each ';' group assigns the same variables (2 or more,
    each once), so it is one tuple; its values are ordered by variable name as in (p, q). Else unchanged."""
    groups, names = [], None
    for group in s.split(";"):
        found = [_ASSIGNMENT.fullmatch(part) for part in group.split(",")]
        if len(found) < 2 or not all(found):
            return s
        pairs = sorted((re.sub(r"[{}]", "", m.group(1)), m.group(2)) for m in found)
        keys = [k for k, _ in pairs]
        if len(set(keys)) != len(keys) or names not in (None, keys):
            return s
        names = keys
        groups.append("(" + ", ".join(v for _, v in pairs) + ")")
    return ", ".join(groups)


def _separators(s: str, policy: AnswerPolicy) -> str:
    """Thousands separators and decimal commas of an answer that is one number (see AnswerPolicy)."""
    if _THOUSANDS.match(s) or _SPACED_THOUSANDS.match(s):
        return s.replace(",", "").replace(" ", "")
    m = _DECIMAL_COMMA.fullmatch(s)
    if m and (policy.decimal_comma == "always" or policy.decimal_comma == "auto" and len(m.group(2)) >= 2):
        return f"{m.group(1)}.{m.group(2)}"
    return s


def normalize_answer(text: str, policy: AnswerPolicy = DEFAULT_POLICY) -> str:
    """Canonical string form of an answer: delimiters, \\boxed, spacing, units and degrees removed."""
    s = str(text).strip()
    for k, v in _UNICODE.items():
        s = s.replace(k, v)
    if "\\begin" not in s:  # "\\frac" from a doubly escaped string; in a matrix "\\" ends a row
        s = _DOUBLED.sub(r"\\", s)
    boxed = last_boxed_group(s)
    if boxed is not None:
        s = boxed[0]
    s = s.replace("\\$", "").replace("$", "")
    s = re.sub(r"\\[\[\]()]", " ", s)  # \( \) \[ \] math delimiters
    s = re.sub(r"(\d)(?:\s*\{,\s*\}|,\\!)\s*(?=\d{3}(?!\d))", r"\1", s)  # 1{,}234, 2,\!500, 11,\! 111 (MATH style)
    s = re.sub(r"(\d)\\,(?=\d{3}(?!\d))", r"\1", s)  # 1\,234
    s = re.sub(r"\\[dtc]frac", r"\\frac", s)
    s = s.replace("<=", "\\le ").replace(">=", "\\ge ").replace("!=", "\\ne ")  # "=" is only equations
    s = s.replace("\\langle", "(").replace("\\rangle", ")").replace("\\mathbb{R}", "(-\\infty, \\infty)")
    s = s.replace("\\{", SET_OPEN).replace("\\}", SET_CLOSE)
    s = _SIZING.sub("", s).replace("\\middle", "")
    if re.search(r"\\(?:sin|cos|tan|cot|sec|csc)\b", s):  # \tan 45^\circ: degrees inside trig mean pi/180
        s = re.sub(r"(\d+(?:\.\d+)?)\s*(?:" + _DEGREES.pattern + ")", r"(\1\\pi/180)", s)
    s = _DEGREES.sub("", s)
    s = _SPACING.sub(" ", s)
    whole = _TEXT_CMD.fullmatch(s.strip())
    if whole and not whole.group(2):  # \text{Evelyn}: the answer is the text itself
        s = whole.group(1).strip()
    s = _TEXT_CMD.sub(_unwrap_text, s)
    s = re.sub(r"\\%|\s*\b(?:percent(?:age)?|pct)\b", "%", s)
    s = re.sub(r"(?i)\bdollars?\b|\bcents?\b|\busd\b", " ", s) if re.search(r"\d", s) else s
    s = re.sub(r",\s*(?:and|or)\s+", ", ", s, flags=re.IGNORECASE)  # serial comma: "19, 46, and 82"
    s = re.sub(r"(?:,\s*)+,", ",", _LIST_WORDS.sub(", ", s))  # "19, 46, \\text{ and } 82"
    if policy.semicolon_separates and ";" in s:
        s = _assignment_groups(s).replace(";", ",")
    s = re.sub(r"\s+", " ", s).strip()
    s = re.sub(r"\\+$", "", s).strip()  # a dangling backslash (cut-off output) is not a command
    s = re.sub(r"(?<!\.)\s*[.,;:]$", "", s).strip()  # sentence punctuation, not an ellipsis "..."
    s = re.sub(r"^(?:the\s+)?(?:final\s+)?answer\s*(?:is|:)\s*", "", s, flags=re.IGNORECASE)
    s = _approx(s)
    s = _strip_units(s)
    s = re.sub(r"^\(([A-Za-z])\)$", r"\1", s)  # choice "(C)" is "C"
    return _separators(s, policy)


def plain_number(s: str) -> Fraction | None:
    """The exact value of a normalized answer that is just a decimal number, else None."""
    if len(s) > 60 or not _NUMBER.match(s):
        return None
    try:
        return Fraction(s)
    except (ValueError, ZeroDivisionError):
        return None


def within_tolerance(a: Fraction, b: Fraction, rel_tol: float, abs_tol: float) -> bool:
    """|a - b| <= max(rel_tol * max(|a|, |b|), abs_tol), in exact arithmetic (no float round-off);
    two integers must be equal."""
    if a.denominator == 1 and b.denominator == 1:  # integers are never "close": 1450001 != 1450000
        return a == b
    diff = abs(a - b)
    # str(): 1e-6 means exactly 10**-6, not the nearest binary float.
    bound = max(Fraction(str(rel_tol)) * max(abs(a), abs(b)), Fraction(str(abs_tol)))
    return diff <= bound
