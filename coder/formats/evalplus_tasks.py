"""Per-task rules of evalplus (v0.3): MBPP+ inputs that JSON cannot spell, and the special oracles.

Reimplemented from evalplus's `data/mbpp.py` (`mbpp_deserialize_inputs`) and `eval/_special_oracle.py`
so a file graded here gets the inputs and oracles evalplus's own harness gives it.
"""
from __future__ import annotations

import math

# MBPP+ tasks whose output is only checked for "is not None" (evalplus stores True/False).
OUTPUT_NOT_NONE = frozenset({"check_str", "text_match_three", "text_starta_endb"})
# MBPP+ tasks compared as sets: set(out) == set(expected).
OUTPUT_SET_EQ = frozenset({"similar_elements", "find_char_long", "common_in_nested_lists", "extract_singly",
                           "larg_nnum", "intersection_array", "find_dissimilar", "Diff"})


def poly(xs: list, x: float) -> float:
    """HumanEval/32's oracle: the polynomial with coefficients xs at x (find_zero's answer must be a root)."""
    return sum(coeff * math.pow(x, i) for i, coeff in enumerate(xs))


def surface_area(base_edge, height):
    """Mbpp/581's second accepted answer: the slant height taken from the perpendicular height."""
    slant = math.sqrt((base_edge / 2) ** 2 + height ** 2)
    return round(base_edge ** 2 + 4 * (base_edge * slant) / 2)


def digit_distance(a, b):
    """Mbpp/558's second accepted answer: digits compared after zero-padding to the same length."""
    sa, sb = str(a), str(b)
    width = max(len(sa), len(sb))
    return sum(abs(int(x) - int(y)) for x, y in zip(sa.zfill(width), sb.zfill(width)))


def _deep_tuple(value):
    return tuple(_deep_tuple(v) for v in value) if isinstance(value, list) else value


def _tuples(arg):
    return [tuple(x) for x in arg]


# task number -> how one input (a JSON list of arguments) becomes the arguments evalplus passes.
_RULES = {}
for _n in (2, 116, 132, 143, 222, 261, 273, 394, 399, 421, 424, 429, 470, 560, 579, 596, 616, 630, 726, 740,
           744, 809):
    _RULES[_n] = lambda inp: [tuple(arg) for arg in inp]
for _n in (63, 64, 70, 94, 120, 237, 272, 299, 400, 409, 417, 438, 473, 614, 780):
    _RULES[_n] = lambda inp: [_tuples(arg) for arg in inp]
for _n in (75, 413, 444, 753):
    _RULES[_n] = lambda inp: [_tuples(inp[0]), inp[1]]
for _n in (106, 750):
    _RULES[_n] = lambda inp: [inp[0], tuple(inp[1])]
for _n in (250, 405, 446, 617, 720, 763, 808):
    _RULES[_n] = lambda inp: [tuple(inp[0]), inp[1]]
for _n in (259, 401, 445):
    _RULES[_n] = lambda inp: [tuple(_tuples(arg)) for arg in inp]
for _n in (580, 615, 791):
    _RULES[_n] = _deep_tuple
_RULES[115] = lambda inp: [[set(x) if isinstance(x, list) and x else {} for x in inp[0]]]
_RULES[124] = lambda inp: (float(inp[0]), complex(inp[1]))
_RULES[252] = lambda inp: [complex(inp[0])]
_RULES[278] = lambda inp: [tuple(tuple(x) if isinstance(x, list) else x for x in inp[0])]
_RULES[307] = lambda inp: [tuple(inp[0]), inp[1], inp[2]]
_RULES[722] = lambda inp: [{k: tuple(v) for k, v in inp[0].items()}, *inp[1:]]


def mbpp_inputs(task_id: str, inputs: list) -> list:
    """MBPP+ inputs as evalplus passes them: tuples, sets and complex numbers where its task needs them."""
    try:
        rule = _RULES.get(int(task_id.rsplit("/", 1)[-1]))
    except ValueError:
        rule = None
    return [rule(inp) for inp in inputs] if rule else inputs
