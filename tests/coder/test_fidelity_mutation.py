"""In-place changes, identity and aliasing: what the tests hold references to sees what the candidate did."""
from __future__ import annotations

from fidelity import fidelity_suite

CASES = [
    ("mutate_by_keyword", "def push(item, stack):\n    \"\"\"Append item to stack in place.\"\"\"\n",
     "    stack.append(item)\n", "    stack = stack + [item]\n",
     "def check(candidate):\n    s = [1]\n    candidate(item=2, stack=s)\n    assert s == [1, 2]\n"),
    ("mutate_set", "def add_all(s, xs):\n    \"\"\"Add xs to the set s in place.\"\"\"\n",
     "    s.update(xs)\n", "    s = s | set(xs)\n",
     "def check(candidate):\n    s = {1}\n    candidate(s, [2, 3])\n    assert s == {1, 2, 3}\n"),
    ("nested_reference", "def bump_all(rows):\n    \"\"\"Add 1 to every number of every row in place.\"\"\"\n",
     "    for r in rows:\n        for i in range(len(r)):\n            r[i] += 1\n",
     "    rows[:] = [[v + 1 for v in r] for r in rows]\n",
     "def check(candidate):\n    a, b = [1], [2, 3]\n    rows = [a, b]\n    candidate(rows)\n    assert a == [2] and b == [3, 4] and rows[0] is a\n"),
    ("mutation_before_raise", "def drain(xs):\n    \"\"\"Pop everything, then raise ValueError if anything was negative.\"\"\"\n",
     "    bad = False\n    while xs:\n        bad |= xs.pop() < 0\n    if bad:\n        raise ValueError('negative')\n",
     "    if any(x < 0 for x in xs):\n        raise ValueError('negative')\n    xs.clear()\n",
     "def check(candidate):\n    xs = [1, -2]\n    try:\n        candidate(xs)\n    except ValueError:\n        pass\n    assert xs == []\n"),
    ("returns_same_object", "def sort_in_place(xs):\n    \"\"\"Sort xs in place and return it.\"\"\"\n",
     "    xs.sort()\n    return xs\n", "    return sorted(xs)\n",
     "def check(candidate):\n    xs = [3, 1]\n    assert candidate(xs) is xs\n    assert xs == [1, 3]\n"),
    ("returns_copy", "def sorted_copy(xs):\n    \"\"\"A sorted copy; xs unchanged.\"\"\"\n",
     "    return sorted(xs)\n", "    xs.sort()\n    return xs\n",
     "def check(candidate):\n    xs = [3, 1]\n    out = candidate(xs)\n    assert out == [1, 3] and out is not xs and xs == [3, 1]\n"),
    ("aliased_grid", "def grid(r, c):\n    \"\"\"[[0] * c] * r (rows aliased, on purpose).\"\"\"\n",
     "    return [[0] * c] * r\n", "    return [[0] * c for _ in range(r)]\n",
     "def check(candidate):\n    g = candidate(3, 2)\n    g[0][1] = 5\n    assert g == [[0, 5]] * 3\n"),
    ("independent_grid", "def grid(r, c):\n    \"\"\"A fresh r x c grid of zeros.\"\"\"\n",
     "    return [[0] * c for _ in range(r)]\n", "    return [[0] * c] * r\n",
     "def check(candidate):\n    g = candidate(2, 2)\n    g[0][0] = 1\n    assert g == [[1, 0], [0, 0]]\n"),
    ("dict_update_in_place", "def merge_into(d, extra):\n    \"\"\"d.update(extra) in place; returns None.\"\"\"\n",
     "    d.update(extra)\n", "    d = {**d, **extra}\n",
     "def check(candidate):\n    d = {'a': 1}\n    assert candidate(d, {'b': 2}) is None\n    assert d == {'a': 1, 'b': 2}\n"),
    ("object_attribute_mutation", "class Node:\n    def __init__(self, v, nxt=None):\n        self.v, self.nxt = v, nxt\n\ndef reverse(head):\n    \"\"\"Reverse the linked list in place; return the new head.\"\"\"\n",
     "    prev = None\n    while head:\n        head.nxt, prev, head = prev, head, head.nxt\n    return prev\n",
     "    return head\n",
     "def check(candidate):\n    c = Node(3); b = Node(2, c); a = Node(1, b)\n    h = candidate(a)\n    assert h is c and c.nxt is b and b.nxt is a and a.nxt is None\n"),
    ("result_contains_argument", "def pair(x):\n    \"\"\"(x, x): the same object twice.\"\"\"\n",
     "    return (x, x)\n", "    return (x, list(x))\n",
     "def check(candidate):\n    x = [1]\n    a, b = candidate(x)\n    assert a is x and b is x\n"),
]


results, test_verdict_matches_plain_python = fidelity_suite(CASES)
