"""Stdlib values keep their state; Decimal, Fraction, range, bytearray, IntEnum, str/int subclasses,
generators, closures and instances of the prompt's or the tests' classes are graded as the tests see them."""
from __future__ import annotations

import pytest

from fidelity import check_case, grade_all

CASES = [
    ("defaultdict_factory", "from collections import defaultdict\n\ndef group(words):\n    \"\"\"defaultdict(list) of words by first letter.\"\"\"\n",
     "    d = defaultdict(list)\n    for w in words:\n        d[w[0]].append(w)\n    return d\n",
     "    d = {}\n    for w in words:\n        d.setdefault(w[0], []).append(w)\n    return d\n",
     "def check(candidate):\n    d = candidate(['ab', 'ac', 'b'])\n    assert d['a'] == ['ab', 'ac']\n    assert d['z'] == []\n"),
    ("dict_not_defaultdict", "def counts(xs):\n    \"\"\"A plain dict of counts (missing keys raise KeyError).\"\"\"\n",
     "    d = {}\n    for x in xs:\n        d[x] = d.get(x, 0) + 1\n    return d\n",
     "    from collections import defaultdict\n    d = defaultdict(int)\n    for x in xs:\n        d[x] += 1\n    return d\n",
     "def check(candidate):\n    d = candidate('aab')\n    assert d == {'a': 2, 'b': 1}\n    try:\n        d['z']\n    except KeyError:\n        pass\n    else:\n        assert False\n"),
    ("deque_maxlen", "from collections import deque\n\ndef window(n):\n    \"\"\"An empty deque keeping the last n items.\"\"\"\n",
     "    return deque(maxlen=n)\n", "    return deque()\n",
     "def check(candidate):\n    w = candidate(2)\n    w.extend([1, 2, 3])\n    assert list(w) == [2, 3] and w.maxlen == 2\n"),
    ("decimal_exact", "from decimal import Decimal\n\ndef price(cents):\n    \"\"\"cents as a Decimal number of units, two places.\"\"\"\n",
     "    return Decimal(cents) / Decimal(100)\n", "    return cents / 100\n",
     "from decimal import Decimal\ndef check(candidate):\n    assert candidate(110) == Decimal('1.10')\n    assert isinstance(candidate(5), Decimal)\n"),
    ("fraction_result", "from fractions import Fraction\n\ndef harmonic(n):\n    \"\"\"Sum of 1/k for k in 1..n, exactly.\"\"\"\n",
     "    return sum(Fraction(1, k) for k in range(1, n + 1))\n", "    return sum(1 / k for k in range(1, n + 1))\n",
     "from fractions import Fraction\ndef check(candidate):\n    assert candidate(3) == Fraction(11, 6)\n    assert type(candidate(2)) is Fraction\n"),
    ("range_result", "def evens(n):\n    \"\"\"range of even numbers below n.\"\"\"\n",
     "    return range(0, n, 2)\n", "    return list(range(0, n, 2))\n",
     "def check(candidate):\n    r = candidate(7)\n    assert isinstance(r, range) and list(r) == [0, 2, 4, 6]\n"),
    ("bytearray_result", "def buffer(n):\n    \"\"\"A mutable zeroed buffer of n bytes.\"\"\"\n",
     "    return bytearray(n)\n", "    return bytes(n)\n",
     "def check(candidate):\n    b = candidate(3)\n    b[0] = 255\n    assert b == bytearray(b'\\xff\\x00\\x00')\n"),
    ("intenum_from_prompt", "from enum import IntEnum\n\nclass Level(IntEnum):\n    LOW = 1\n    HIGH = 2\n\ndef level(x):\n    \"\"\"HIGH when x > 10 else LOW.\"\"\"\n",
     "    return Level.HIGH if x > 10 else Level.LOW\n", "    return Level.HIGH if x >= 10 else Level.LOW\n",
     "def check(candidate):\n    assert candidate(11) is Level.HIGH and candidate(10) == 1\n    assert candidate(3).name == 'LOW'\n"),
    ("str_subclass_from_prompt", "class Tag(str):\n    def wrapped(self):\n        return '<' + self + '>'\n\ndef make(s):\n    \"\"\"Tag of s lower-cased.\"\"\"\n",
     "    return Tag(s.lower())\n", "    return s.lower()\n",
     "def check(candidate):\n    t = candidate('AB')\n    assert t == 'ab' and t.wrapped() == '<ab>'\n"),
    ("int_subclass_candidate", "def make_id(n):\n    \"\"\"An int equal to n (any int subclass is fine).\"\"\"\n",
     "    class Id(int):\n        pass\n    return Id(n)\n", "    class Id(int):\n        pass\n    return Id(n + 1)\n",
     "def check(candidate):\n    assert candidate(4) == 4 and candidate(4) + 1 == 5\n"),
    ("generator_result", "def squares(n):\n    \"\"\"Generator of the first n squares.\"\"\"\n",
     "    for i in range(n):\n        yield i * i\n", "    for i in range(1, n):\n        yield i * i\n",
     "import types\ndef check(candidate):\n    g = candidate(3)\n    assert isinstance(g, types.GeneratorType)\n    assert next(g) == 0 and list(g) == [1, 4]\n"),
    ("closure_counter", "def make_counter(start):\n    \"\"\"A function returning start, start+1, ... on successive calls.\"\"\"\n",
     "    n = [start - 1]\n    def nxt():\n        n[0] += 1\n        return n[0]\n    return nxt\n",
     "    def nxt():\n        return start\n    return nxt\n",
     "def check(candidate):\n    a, b = candidate(5), candidate(0)\n    assert [a(), a(), b(), a()] == [5, 6, 0, 7]\n"),
    ("prompt_class_instance", "class Point:\n    def __init__(self, x, y):\n        self.x, self.y = x, y\n    def __eq__(self, o):\n        return (self.x, self.y) == (o.x, o.y)\n\ndef mid(a, b):\n    \"\"\"Midpoint of two Points.\"\"\"\n",
     "    return Point((a.x + b.x) / 2, (a.y + b.y) / 2)\n", "    return Point((a.x + b.x) // 2, (a.y + b.y) / 2)\n",
     "def check(candidate):\n    assert candidate(Point(0, 0), Point(3, 4)) == Point(1.5, 2)\n"),
    ("test_class_instance", "def scale(v, k):\n    \"\"\"A new object of v's class with v.x * k.\"\"\"\n",
     "    return type(v)(v.x * k)\n", "    v.x *= k\n    return v\n",
     "class V:\n    def __init__(self, x):\n        self.x = x\ndef check(candidate):\n    v = V(2)\n    w = candidate(v, 3)\n    assert isinstance(w, V) and w.x == 6 and v.x == 2\n"),
    ("namedtuple_result", "from collections import namedtuple\nPair = namedtuple('Pair', 'lo hi')\n\ndef bounds(xs):\n    \"\"\"Pair(min, max).\"\"\"\n",
     "    return Pair(min(xs), max(xs))\n", "    return Pair(max(xs), min(xs))\n",
     "def check(candidate):\n    p = candidate([3, 1, 2])\n    assert p == (1, 3) and p.lo == 1 and p.hi == 3\n"),
    ("counter_result", "from collections import Counter\n\ndef tally(s):\n    \"\"\"Counter of characters.\"\"\"\n",
     "    return Counter(s)\n", "    return dict(Counter(s))\n",
     "def check(candidate):\n    c = candidate('aab')\n    assert c.most_common(1) == [('a', 2)]\n"),
    ("datetime_result", "import datetime\n\ndef tomorrow(d):\n    \"\"\"The next day.\"\"\"\n",
     "    return d + datetime.timedelta(days=1)\n", "    return d + datetime.timedelta(hours=1)\n",
     "import datetime\ndef check(candidate):\n    assert candidate(datetime.date(2020, 2, 28)) == datetime.date(2020, 2, 29)\n"),
]


@pytest.fixture(scope="module")
def results():
    return grade_all(CASES)


@pytest.mark.parametrize("name", [c[0] for c in CASES])
def test_verdict_matches_plain_python(results, name):
    check_case(results, name)
