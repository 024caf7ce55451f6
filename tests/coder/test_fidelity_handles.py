"""Objects whose class the trusted replay does not have: the tests' own classes defined inside `check`
(passed to the candidate as a factory), objects of the candidate's own classes whose attributes,
methods and protocols the tests use (handles), and MBPP-style tests that construct the program's
classes by name. Verdicts must equal a plain python run's; comparisons of the candidate's objects are
never the candidate's `__eq__` to decide (an always-equal object fails)."""
from __future__ import annotations

import subprocess
import sys

import pytest
from fidelity import LIMITS, fidelity_suite

from coder.sandbox import run_tests

STACK = ("    class Stack:\n        def __init__(self):\n            self.items = []\n"
         "        def push(self, x):\n            self.items.append(x)\n            return self\n"
         "        def pop(self):\n            return self.items.pop()\n"
         "        def __len__(self):\n            return len(self.items)\n"
         "        def __iter__(self):\n            return iter(self.items[::-1])\n"
         "        def __contains__(self, x):\n            return x in self.items\n"
         "        def __repr__(self):\n            return f'Stack({self.items})'\n    return Stack()\n")
VEC = ("    class V:\n        def __init__(self, x, y):\n            self.x, self.y = x, y\n"
       "        def __add__(self, o):\n            return V(self.x + o.x, self.y + o.y)\n"
       "        def __eq__(self, o):\n            return type(o).__name__ == 'V' and (self.x, self.y) == (o.x, o.y)\n"
       "        def __hash__(self):\n            return hash((self.x, self.y))\n")

DATAPOINT = ("    from dataclasses import dataclass\n    @dataclass\n    class P:\n        x: int\n        y: int\n"
             "        def norm1(self):\n            return abs(self.x) + abs(self.y)\n"
             "        @property\n        def swapped(self):\n            return P(self.y, self.x)\n"
             "        def __str__(self):\n            return f'{self.x},{self.y}'\n")
ORDERED = ("    from dataclasses import dataclass\n    @dataclass(order=True)\n    class V:\n        major: int\n        minor: int\n"
           "        def bump(self):\n            return V(self.major, self.minor + 1)\n")
BAG = ("    class Bag:\n        def __init__(self):\n            self.items = []\n"
       "        def add(self, x):\n            self.items.append(x)\n            return self\n")
ACC = ("    class Acc:\n        def __init__(self, v):\n            self.v = v\n"
       "        def __iadd__(self, x):\n            self.v += x\n            return self\n"
       "        def __format__(self, spec):\n            return format(self.v, spec)\n"
       "        def __reversed__(self):\n            return iter(range(self.v, 0, -1))\n")
MONEY = ("    from dataclasses import dataclass\n    @dataclass(frozen=True)\n    class M:\n        cents: int\n"
         "        def __str__(self):\n            return '${}.{:02d}'.format(*divmod(self.cents, 100))\n")

CASES = [
    ("test_local_class_factory", "def tag_all(xs, make):\n    \"\"\"{x: make(x)}.\"\"\"\n",
     "    return {x: make(x) for x in xs}\n", "    return {x: make(x) for x in xs[1:]}\n",
     "def check(candidate):\n    class Tag:\n        def __init__(self, v):\n            self.v = v\n"
     "    out = candidate([1, 2], Tag)\n    assert out[1].v == 1 and isinstance(out[2], Tag)\n"),
    ("candidate_counter_methods", "def make_counter():\n    \"\"\"An object with .count from 0 and .inc() returning the new count.\"\"\"\n",
     "    class C:\n        def __init__(self):\n            self.count = 0\n        def inc(self):\n"
     "            self.count += 1\n            return self.count\n    return C()\n",
     "    class C:\n        def __init__(self):\n            self.count = 0\n        def inc(self):\n"
     "            return self.count + 1\n    return C()\n",
     "def check(candidate):\n    c = candidate()\n    assert c.inc() == 1 and c.inc() == 2\n    assert c.count == 2\n"
     "    c.count = 10\n    assert c.inc() == 11\n    assert hasattr(c, 'inc') and not hasattr(c, 'nope')\n"),
    ("candidate_stack_protocols", "def make_stack():\n    \"\"\"A stack: push (chainable), pop, len, iteration top first, in, repr.\"\"\"\n",
     STACK, STACK.replace("self.items[::-1]", "self.items"),
     "def check(candidate):\n    s = candidate()\n    assert s.push(1) is s\n    s.push(2).push(3)\n    assert len(s) == 3 and 2 in s and 7 not in s\n"
     "    assert list(s) == [3, 2, 1]\n    assert repr(s) == 'Stack([1, 2, 3])' and str(s) == repr(s)\n"
     "    assert s.pop() == 3 and len(s) == 2 and bool(s)\n"),
    ("candidate_vector_equality", "def vec(x, y):\n    \"\"\"A 2-d vector with +, == and hash.\"\"\"\n",
     VEC + "    return V(x, y)\n", VEC.replace("self.y + o.y", "self.y - o.y") + "    return V(x, y)\n",
     "def check(candidate):\n    a, b = candidate(1, 2), candidate(3, 4)\n    assert a + b == candidate(4, 6)\n"
     "    assert a != b and a == candidate(1, 2)\n    assert len({a, candidate(1, 2)}) == 1\n    assert (a + b).x == 4\n"),
    # The program's dataclass with behaviour of its own: methods, __str__ and a property are the candidate's
    # (handles), while dataclasses.asdict/astuple/fields and == still see its fields.
    ("candidate_dataclass_methods", "def point(x, y):\n    \"\"\"A dataclass P(x, y) with norm1(), a `swapped` property and str 'x,y'.\"\"\"\n",
     DATAPOINT + "    return P(x, y)\n", DATAPOINT.replace("abs(self.x) + abs(self.y)", "abs(self.x + self.y)")
     + "    return P(x, y)\n",
     "import dataclasses\n\ndef check(candidate):\n    p = candidate(3, -4)\n    assert p.norm1() == 7 and str(p) == '3,-4'\n"
     "    q = p.swapped\n    assert (q.x, q.y) == (-4, 3) and q.swapped == p and q != p\n"
     "    assert dataclasses.asdict(p) == {'x': 3, 'y': -4} and dataclasses.astuple(p) == (3, -4)\n"
     "    assert [f.name for f in dataclasses.fields(p)] == ['x', 'y'] and dataclasses.is_dataclass(p)\n"),
    ("candidate_dataclass_ordered", "def versions(pairs):\n    \"\"\"Dataclass V(major, minor) objects, order=True, with bump(); in the given order.\"\"\"\n",
     ORDERED + "    return [V(a, b) for a, b in pairs]\n",
     ORDERED.replace("major: int\n        minor: int", "minor: int\n        major: int") + "    return [V(b, a) for a, b in pairs]\n",
     "def check(candidate):\n    vs = candidate([(1, 9), (2, 0), (1, 10)])\n    assert vs[0] < vs[1] and vs[2] >= vs[0] and not vs[1] <= vs[2]\n"
     "    assert [(v.major, v.minor) for v in sorted(vs)] == [(1, 9), (1, 10), (2, 0)]\n    assert max(vs).bump().minor == 1\n"),
    ("candidate_object_copied", "def make_bag():\n    \"\"\"A Bag with .items (a list, starting [1]) and add(x) appending x, returning the bag; copyable.\"\"\"\n",
     BAG + "    return Bag().add(1)\n",
     BAG + "        def __deepcopy__(self, memo):\n            return self\n    return Bag().add(1)\n",
     "import copy\n\ndef check(candidate):\n    b = candidate()\n    c = copy.deepcopy(b)\n    c.add(2)\n"
     "    assert b.items == [1] and c.items == [1, 2] and c is not b\n    s = copy.copy(b)\n    s.add(3)\n"
     "    assert b.items == [1, 3]\n"),
    ("candidate_inplace_format_reversed", "def make_acc(v):\n    \"\"\"An accumulator: += adds in place, format() formats its value, reversed() counts down from it.\"\"\"\n",
     ACC + "    return Acc(v)\n", ACC.replace("self.v += x\n            return self", "return Acc(self.v + x)") + "    return Acc(v)\n",
     "def check(candidate):\n    a = candidate(3)\n    b = a\n    a += 2\n    assert a is b and a.v == 5\n"
     "    assert f'{a:>4}' == '   5' and f'{a}' == '5'\n    assert list(reversed(a)) == [5, 4, 3, 2, 1]\n"),
    ("candidate_dataclass_str_only", "def money(cents):\n    \"\"\"A dataclass M(cents) whose str is like '$1.05'.\"\"\"\n",
     MONEY + "    return M(cents)\n", MONEY.replace("{:02d}", "{}") + "    return M(cents)\n",
     "def check(candidate):\n    assert str(candidate(105)) == '$1.05'\n    assert candidate(105).cents == 105\n"
     "    assert [str(candidate(c)) for c in (5, 250)] == ['$0.05', '$2.50']\n"),
]

results, test_verdict_matches_plain_python = fidelity_suite(CASES)

ALWAYS_EQUAL = ("    class AE:\n        def __init__(self, v):\n            self.v = v\n"
                "        def __eq__(self, o):\n            return True\n        __hash__ = object.__hash__\n")


@pytest.mark.parametrize("mode", ["strict", "compatible"])
@pytest.mark.parametrize("tests", [
    "def check(candidate):\n    assert candidate(2) == 4\n",  # against plain data
    "def check(candidate):\n    assert candidate(2) == candidate(5)\n",  # against another of its objects
    "def check(candidate):\n    assert [candidate(2)] == [candidate(3)]\n",
])
def test_always_equal_object_of_the_candidate_fails(tests, mode):
    program = "def double(n):\n" + ALWAYS_EQUAL + "    return AE(n * 3)\n"
    assert subprocess.run([sys.executable, "-c", f"{program}\n{tests}\ncheck(double)\n"]).returncode == 0  # plain python passes it
    verdict = run_tests(program, tests, LIMITS, entry_point="double", verdicts=mode)
    assert verdict.status == "failed", verdict


NODE = "class Node:\n    def __init__(self, v, nxt=None):\n        self.v, self.nxt = v, nxt\n"
PAIR = "class Pair(object):\n    def __init__(self, a, b):\n        self.a = a\n        self.b = b\n"
MBPP = [
    (NODE + "def length(n):\n    return 0 if n is None else 1 + length(n.nxt)\n",
     NODE + "def length(n):\n    return 0 if n is None else 1 + length(n.nxt.nxt if n.nxt else None)\n",
     "assert length(Node(1, Node(2, Node(3)))) == 3\nassert length(None) == 0\nassert isinstance(Node(1), Node)\n"),
    (PAIR + "def chain(arr, n):\n    return sum(1 for i in range(1, n) if arr[i].a > arr[i - 1].b) + 1\n",
     PAIR + "def chain(arr, n):\n    return sum(1 for i in range(1, n) if arr[i].a >= arr[i - 1].a) + 1\n",
     "assert chain([Pair(5, 24), Pair(15, 25), Pair(27, 40), Pair(50, 60)], 4) == 3\n"
     "assert chain([Pair(1, 2), Pair(3, 4), Pair(5, 6)], 3) == 3\n"),
    (NODE + "def head(v):\n    return Node(v)\n", NODE + "def head(v):\n    return Node(v + 1)\n",
     "h = head(4)\nassert isinstance(h, Node) and h.v == 4 and h.nxt is None\n"),
]


@pytest.mark.parametrize("case", range(len(MBPP)))
@pytest.mark.parametrize("mode", ["strict", "compatible"])
def test_mbpp_tests_construct_the_programs_classes(case, mode):
    for program, expected in ((MBPP[case][0], True), (MBPP[case][1], False)):
        tests = MBPP[case][2]
        plain = subprocess.run([sys.executable, "-c", f"{program}\n{tests}"]).returncode == 0
        assert plain is expected
        verdict = run_tests(program, tests, LIMITS, verdicts=mode)
        assert verdict.passed is plain, verdict
        assert verdict.verified == "replay"
