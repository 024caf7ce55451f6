"""Size: many calls with large arguments, deep nesting, a million-item answer: no limit a plain run lacks."""
from __future__ import annotations

from fidelity import fidelity_suite

CASES = [
    ("hundreds_of_large_calls", "def total(xs):\n    \"\"\"Sum.\"\"\"\n",
     "    return sum(xs)\n", "    return sum(xs[:-1]) if len(xs) > 50000 else sum(xs)\n",
     "def check(candidate):\n    for n in range(300):\n        xs = list(range(n * 200))\n        assert candidate(xs) == sum(xs)\n"),
    ("deep_result", "def nest(n):\n    \"\"\"[[[...]]] n levels deep.\"\"\"\n",
     "    x = []\n    for _ in range(n):\n        x = [x]\n    return x\n",
     "    x = []\n    for _ in range(n - 1):\n        x = [x]\n    return x\n",
     "def check(candidate):\n    x = candidate(500)\n    d = 0\n    while x:\n        x = x[0]\n        d += 1\n    assert d == 500\n"),
    ("deep_argument", "def flatten(x):\n    \"\"\"All ints in a nested list, in order.\"\"\"\n",
     "    out, stack = [], [x]\n    while stack:\n        v = stack.pop()\n        if isinstance(v, list):\n            stack.extend(reversed(v))\n        else:\n            out.append(v)\n    return out\n",
     "    out, stack = [], [x]\n    while stack:\n        v = stack.pop()\n        if isinstance(v, list):\n            stack.extend(v)\n        else:\n            out.append(v)\n    return out\n",
     "def check(candidate):\n    x = [1, [2]]\n    for i in range(400):\n        x = [x, i]\n    assert candidate(x)[:3] == [1, 2, 0]\n"),
    ("million_items", "def ones(n):\n    \"\"\"A list of n ones.\"\"\"\n",
     "    return [1] * n\n", "    return [1] * (n - 1)\n",
     "def check(candidate):\n    assert len(candidate(1_000_000)) == 1_000_000\n"),
    ("big_dict_result", "def squares(n):\n    \"\"\"{i: i*i for i below n}.\"\"\"\n",
     "    return {i: i * i for i in range(n)}\n", "    return {i: i * i for i in range(1, n)}\n",
     "def check(candidate):\n    d = candidate(200_000)\n    assert len(d) == 200_000 and d[0] == 0\n"),
    ("big_ints", "def fact(n):\n    \"\"\"n!\"\"\"\n",
     "    r = 1\n    for i in range(2, n + 1):\n        r *= i\n    return r\n", "    r = 1\n    for i in range(2, n):\n        r *= i\n    return r\n",
     "import math\ndef check(candidate):\n    assert candidate(500) == math.factorial(500)\n"),
]


results, test_verdict_matches_plain_python = fidelity_suite(CASES, modes=("compatible",))
