"""Normalise values to plain builtin data without running any user code, and back.

`encode` inspects only exact builtin types (`type(x) is int`, never isinstance), so a subclass or
an object with a forged `__eq__`/`__hash__` is tagged as unsupported instead of being compared.
The encoded form is JSON: strings, numbers, booleans and null stand for themselves; every JSON
list is a tagged node ["l"|"t"|"s"|"F"|"d"|"D"|"q"|"b"|"c"|"I"|"f"|"X", ...]. Counter, OrderedDict,
defaultdict and deque (exact types) are read with the builtin methods and rebuilt in the replay.
"""
from __future__ import annotations

import collections
import math

# Trusted stdlib containers whose contents are read with builtin methods and rebuilt in the replay.
_MAPPINGS = {collections.Counter: "Counter", collections.OrderedDict: "OrderedDict", collections.defaultdict: "dict"}

MAX_DEPTH = 100
MAX_NODES = 1_000_000


class _TooBig(Exception):
    pass


def encode(value: object) -> object:
    """Plain-data, JSON-serialisable form of `value`; unsupported types become ["X", type name]."""
    budget = [MAX_NODES]
    try:
        return _enc(value, 0, budget)
    except _TooBig as exc:
        return ["X", str(exc)]


def _enc(x: object, depth: int, budget: list[int]) -> object:
    budget[0] -= 1
    if budget[0] < 0 or depth > MAX_DEPTH:
        raise _TooBig("value too large or too deeply nested")
    t = type(x)
    if x is None or t is bool or t is str:
        return x
    if t is int:
        return x if -(1 << 62) < x < (1 << 62) else ["I", hex(x)]
    if t is float:
        return x if math.isfinite(x) else ["f", repr(x)]
    if t is list or t is tuple or t is set or t is frozenset:
        tag = {list: "l", tuple: "t", set: "s", frozenset: "F"}[t]
        items = [_enc(v, depth + 1, budget) for v in list.__iter__(x)] if t is list else [
            _enc(v, depth + 1, budget) for v in t.__iter__(x)
        ]
        return [tag, items]
    if t is dict:
        return ["d", [[_enc(k, depth + 1, budget), _enc(v, depth + 1, budget)] for k, v in dict.items(x)]]
    if t in _MAPPINGS:
        items = [[_enc(k, depth + 1, budget), _enc(v, depth + 1, budget)] for k, v in dict.items(x)]
        return ["D", _MAPPINGS[t], items]
    if t is collections.deque:
        return ["q", [_enc(v, depth + 1, budget) for v in collections.deque.__iter__(x)]]
    if t is bytes:
        return ["b", bytes.hex(x)]
    if t is complex:
        return ["c", _enc(x.real, depth + 1, budget), _enc(x.imag, depth + 1, budget)]
    return ["X", f"{t.__module__}.{t.__qualname__}" if isinstance(t.__qualname__, str) else "object"]


class Unsupported(TypeError):
    """The candidate produced a value that is not plain builtin data."""


def decode(node: object) -> object:
    """Inverse of `encode`, run in the trusted process on JSON the child produced (may be forged)."""
    if node is None or type(node) in (bool, int, float, str):
        return node
    if type(node) is not list or not node or type(node[0]) is not str:
        raise ValueError("malformed recording")
    tag = node[0]
    if tag in ("l", "t", "s", "F"):
        items = [decode(v) for v in node[1]]
        return {"l": list, "t": tuple, "s": set, "F": frozenset}[tag](items)
    if tag == "d":
        return {decode(k): decode(v) for k, v in node[1]}
    if tag == "D":
        factory = {"Counter": collections.Counter, "OrderedDict": collections.OrderedDict}.get(node[1], dict)
        return factory({decode(k): decode(v) for k, v in node[2]})
    if tag == "q":
        return collections.deque(decode(v) for v in node[1])
    if tag == "b":
        return bytes.fromhex(node[1])
    if tag == "c":
        return complex(decode(node[1]), decode(node[2]))
    if tag == "I":
        return int(node[1], 16)
    if tag == "f":
        return float(node[1])
    if tag == "X":
        raise Unsupported(f"candidate returned a non-plain value ({str(node[1])[:80]}); "
                          "only builtin None/bool/int/float/complex/str/bytes/list/tuple/dict/set are graded")
    raise ValueError(f"malformed recording tag {tag!r}")
