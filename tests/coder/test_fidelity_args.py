"""Arguments that are not plain data (callbacks, lambdas, range, Fraction, deep nesting) and prompt
definitions the tests use: proofcode's verdict equals a plain python run's, for a correct and a wrong completion."""
from __future__ import annotations

from fidelity import fidelity_suite

CASES = [
    ("apply_callback", "def apply_all(xs, fn):\n    \"\"\"Apply fn to each element.\"\"\"\n",
     "    return [fn(x) for x in xs]\n", "    return [fn(x) for x in xs[:-1]]\n",
     "def check(candidate):\n    assert candidate([1, 2, 3], lambda x: x * 10) == [10, 20, 30]\n    assert candidate([], str) == []\n"),
    ("callback_side_effects", "def for_each(xs, visit):\n    \"\"\"Call visit on each element in order.\"\"\"\n",
     "    for x in xs:\n        visit(x)\n", "    for x in reversed(xs):\n        visit(x)\n",
     "def check(candidate):\n    seen = []\n    candidate([3, 1, 2], seen.append)\n    assert seen == [3, 1, 2]\n"
     "    log = []\n    candidate('ab', lambda c: log.append(c.upper()))\n    assert log == ['A', 'B']\n"),
    ("key_function", "def top(xs, key):\n    \"\"\"The element with the largest key.\"\"\"\n",
     "    return max(xs, key=key)\n", "    return min(xs, key=key)\n",
     "def check(candidate):\n    assert candidate(['aa', 'b', 'ccc'], len) == 'ccc'\n    assert candidate([3, -7, 5], key=abs) == -7\n"),
    ("range_argument", "def total(r):\n    \"\"\"Sum of a range.\"\"\"\n",
     "    return sum(r)\n", "    return sum(r) - r[0] if len(r) else 0\n",
     "def check(candidate):\n    assert candidate(range(1, 5)) == 10\n    assert candidate(range(0)) == 0\n    assert candidate(range(3, 9, 2)) == 15\n"),
    ("fraction_argument", "from fractions import Fraction\n\ndef half(x):\n    \"\"\"x / 2 exactly.\"\"\"\n",
     "    return x / 2\n", "    return x // 2\n",
     "def check(candidate):\n    assert candidate(Fraction(1, 3)) == Fraction(1, 6)\n    assert candidate(Fraction(5)) == Fraction(5, 2)\n"),
    ("deep_nesting", "def depth(xs):\n    \"\"\"Nesting depth of a list.\"\"\"\n",
     "    d = 0\n    while isinstance(xs, list) and xs:\n        d += 1\n        xs = xs[0]\n    return d + (1 if xs == [] else 0)\n",
     "    return 100\n",
     "def check(candidate):\n    xs = []\n    for _ in range(300):\n        xs = [xs]\n    assert candidate(xs) == 301\n    assert candidate([1]) == 1\n"),
    ("prompt_constant_and_class", "LIMIT = 3\n\nclass Box:\n    def __init__(self, v):\n        self.v = v\n\ndef unbox(b):\n    \"\"\"Box value, capped at LIMIT.\"\"\"\n",
     "    return min(b.v, LIMIT)\n", "    return b.v\n",
     "def check(candidate):\n    assert candidate(Box(2)) == 2\n    assert candidate(Box(10)) == LIMIT\n"),
    ("prompt_import_used_by_tests", "from fractions import Fraction\n\ndef mean(xs):\n    \"\"\"Exact mean.\"\"\"\n",
     "    return Fraction(sum(xs), len(xs))\n", "    return sum(xs) / len(xs)\n",
     "def check(candidate):\n    assert candidate([1, 2]) == Fraction(3, 2)\n    assert type(candidate([1, 1, 2])) is Fraction\n"),
    ("prompt_registry", "REGISTRY = {}\n\ndef register(name, value):\n    \"\"\"Store value under name in REGISTRY.\"\"\"\n",
     "    REGISTRY[name] = value\n", "    REGISTRY[name.upper()] = value\n",
     "def check(candidate):\n    candidate('a', 1)\n    candidate('b', [2])\n    assert REGISTRY == {'a': 1, 'b': [2]}\n"),
    ("prompt_counter_rebound", "CALLS = 0\n\ndef tick():\n    \"\"\"Count calls in CALLS and return the count.\"\"\"\n",
     "    global CALLS\n    CALLS += 1\n    return CALLS\n", "    return CALLS + 1\n",
     "def check(candidate):\n    candidate()\n    candidate()\n    assert CALLS == 2\n"),
    ("prompt_dataclass_in_tests", "from dataclasses import dataclass\n\n@dataclass\nclass P:\n    x: int\n    y: int\n\ndef swap(p):\n    \"\"\"A new P with x and y swapped.\"\"\"\n",
     "    return P(p.y, p.x)\n", "    return P(p.x, p.y)\n",
     "def check(candidate):\n    assert candidate(P(1, 2)) == P(2, 1)\n"),
    ("compose_returns_closure", "def compose(f, g):\n    \"\"\"x -> f(g(x)).\"\"\"\n",
     "    return lambda x: f(g(x))\n", "    return lambda x: g(f(x))\n",
     "def check(candidate):\n    h = candidate(lambda x: x + 1, lambda x: x * 2)\n    assert h(3) == 7\n    assert h(0) == 1\n"),
    ("many_large_calls", "def last(xs):\n    \"\"\"Last element.\"\"\"\n",
     "    return xs[-1]\n", "    return xs[-1] if len(xs) < 4000 else xs[0]\n",
     "def check(candidate):\n    for n in range(1, 400):\n        xs = list(range(n * 11))\n        assert candidate(xs) == xs[-1]\n"),
]


results, test_verdict_matches_plain_python = fidelity_suite(CASES)
