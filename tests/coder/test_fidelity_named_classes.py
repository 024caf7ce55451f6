"""MBPP-style tests that use the program's classes by name beyond constructing them: static and class
methods, class attributes, unbound methods, `type(obj) is Node`, subclasses, its exception classes caught
by name, its enums and named tuples passed back as arguments, and its other module-level names (constants,
a namedtuple class, a list it fills, a lambda, names it imported). Each case is a correct and
a subtly wrong program, judged by proofcode in both verdict modes and by a plain python run of program +
tests; each correct one failed before the stand-in became its class's handle class."""
from __future__ import annotations

import pytest
from fidelity import check_pair

INIT = "class P:\n    def __init__(self, a):\n        self.a = a\n"
ENUM = "from enum import Enum\nclass C(Enum):\n    A = 1\n    B = 2\ndef f(c):\n    return {}\n"
NT = "from collections import namedtuple\nP = namedtuple('P', 'x y')\ndef f(a):\n    return {}\n"
EXC = "class E({}):\n    pass\ndef f():\n    raise {}('x')\n"
ACCOUNT = ("class InsufficientFunds(Exception):\n    pass\nclass Account:\n    def __init__(self, b):\n        self.b = b\n"
           "    def withdraw(self, x):\n        if x > self.b:\n            raise {}\n        self.b -= x\n")
CASES = [
    ("static_method", INIT + "    @staticmethod\n    def parse(s):\n        return P(int(s))\n",
     INIT + "    @staticmethod\n    def parse(s):\n        return P(len(s))\n",
     "assert P.parse('4').a == 4\n"),
    ("class_method", INIT + "    @classmethod\n    def zero(cls):\n        return cls(0)\n",
     INIT + "    @classmethod\n    def zero(cls):\n        return cls(1)\n",
     "assert P.zero().a == 0 and isinstance(P.zero(), P)\n"),
    ("class_attributes", "class P:\n    UNIT = 7\n    count = 0\n    def __init__(self):\n        P.count += 1\n",
     "class P:\n    UNIT = 7\n    count = 0\n    def __init__(self):\n        self.count = 1\n",
     "P(); P()\nassert P.count == 2 and P.UNIT == 7\n"),
    ("type_is_the_class", INIT, INIT.replace("self.a = a", "self.a = a\n        self.__class__ = Q\nclass Q(P):\n    pass"),
     "p = P(1)\nassert type(p) is P and p.__class__ == P and type(p).__name__ == 'P'\n"),
    ("unbound_method", INIT + "    def get(self):\n        return self.a\n",
     INIT + "    def get(self):\n        return -self.a\n",
     "assert P.get(P(3)) == 3\n"),
    ("subclass", "class A:\n    pass\nclass B(A):\n    def __init__(self, v):\n        self.v = v\n",
     "class A:\n    pass\nclass B:\n    def __init__(self, v):\n        self.v = v\n",
     "assert isinstance(B(1), A) and issubclass(B, A) and not issubclass(A, B)\n"),
    ("exception_caught_by_name", EXC.format("Exception", "E"), EXC.format("Exception", "ValueError"),
     "try:\n    f()\nexcept E as e:\n    assert e.args == ('x',) and type(e).__name__ == 'E'\nelse:\n    assert False\n"),
    ("exception_base_caught_by_name", "class Base(Exception):\n    pass\n" + EXC.format("Base", "E"),
     "class Base(Exception):\n    pass\n" + EXC.format("Exception", "E"),
     "try:\n    f()\nexcept Base as e:\n    assert isinstance(e, E)\nexcept E:\n    assert False\n"),
    ("enum_member_as_argument", ENUM.format("c.value"), ENUM.format("c.value + 1"),
     "assert f(C.B) == 2 and [f(c) for c in (C.A, C.B)] == [1, 2] and isinstance(C.A, C)\n"),
    ("named_tuple_as_argument", "from typing import NamedTuple\nclass E(NamedTuple):\n    a: int\ndef f(e):\n    return e.a\n",
     "from typing import NamedTuple\nclass E(NamedTuple):\n    a: int\ndef f(e):\n    return -e.a\n",
     "assert f(E(1)) == 1 and E(3).a == 3\n"),
    ("module_constant", "LIMIT = 10\ndef f(x):\n    return min(x, LIMIT)\n", "LIMIT = 10\ndef f(x):\n    return min(x, 9)\n",
     "assert f(99) == LIMIT\n"),
    ("module_namedtuple_class", NT.format("a.x"), NT.format("a.y"), "assert f(P(1, 2)) == 1 and isinstance(P(3, 4), P)\n"),
    ("module_list_the_program_fills", "ITEMS = []\ndef add(x):\n    ITEMS.append(x)\n",
     "ITEMS = []\ndef add(x):\n    ITEMS.insert(0, x)\n", "add(1)\nadd(2)\nassert ITEMS == [1, 2]\n"),
    ("module_lambda", "add1 = lambda x: x + 1\n", "add1 = lambda x: x + 2\n", "assert add1(1) == 2\n"),
    ("imported_names", "from collections import Counter\nimport math as m\ndef f(s):\n    return Counter(s)\n",
     "from collections import Counter\nimport math as m\ndef f(s):\n    return Counter(s[1:])\n",
     "assert f('aab') == Counter('aba') and isinstance(f('a'), Counter) and m.sqrt(4) == 2\n"),
    ("exception_class_attributes", "class NotFound(LookupError):\n    status = 404\ndef get(k):\n    raise NotFound(k)\n",
     "class NotFound(LookupError):\n    status = 400\ndef get(k):\n    raise NotFound(k)\n",
     "try:\n    get('a')\nexcept Exception as e:\n    assert e.status == 404 and e.args == ('a',)\n"),
    ("exception_from_a_method", ACCOUNT.format("InsufficientFunds(x)"), ACCOUNT.format("ValueError(x)"),
     "a = Account(5)\na.withdraw(3)\ntry:\n    a.withdraw(5)\nexcept InsufficientFunds as e:\n"
     "    assert e.args == (5,)\nelse:\n    assert False\nassert a.b == 2\n"),
]


@pytest.mark.parametrize("name, correct, wrong, tests", CASES, ids=[c[0] for c in CASES])
def test_named_class_verdicts_match_plain_python(name, correct, wrong, tests):
    check_pair(name, correct, wrong, tests)
