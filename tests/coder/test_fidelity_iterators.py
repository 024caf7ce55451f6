"""Iterators and context managers the program answers: its own iterator class with methods besides
`__next__` (a peeking iterator), a generator the tests drive with `send` and `throw`, a
`@contextlib.contextmanager` function used in `with`. Each case is a correct and a subtly wrong program,
judged by proofcode in both verdict modes and by a plain python run of program + tests; each correct one
failed before."""
from __future__ import annotations

import pytest
from fidelity import check_pair

PEEK = ("class It:\n    def __init__(self):\n        self.n = 2\n    def __iter__(self):\n        return self\n"
        "    def __next__(self):\n        if not self.n:\n            raise StopIteration\n        self.n -= 1\n"
        "        return self.n\n    def peek(self):\n        return {}\n")
SEND = "def g():\n    x = yield 0\n    yield x * {}\n"
THROW = "def g():\n    try:\n        yield 1\n    except {}:\n        yield 'caught'\n"
RUNNING = ("def g():\n    total = 0\n    while True:\n        x = yield total\n        if x is None:\n            return\n"
           "        total {}= x\n")
CM = ("import contextlib\n@contextlib.contextmanager\ndef cm(log):\n    log.append('in')\n    yield 1\n"
      "    log.append({})\n")

CASES = [
    ("own_iterator_with_methods", PEEK.format("self.n"), PEEK.format("self.n + 1"),
     "it = It()\nassert it.peek() == 2\nassert next(it) == 1 and it.peek() == 1\nassert list(it) == [0]\n"
     "assert [x for x in It()] == [1, 0]\n"),
    ("generator_send", SEND.format(2), SEND.format(3), "it = g()\nnext(it)\nassert it.send(5) == 10\n"),
    ("generator_throw", THROW.format("ValueError"), THROW.format("KeyError"),
     "it = g()\nnext(it)\nassert it.throw(ValueError) == 'caught'\n"),
    ("generator_send_until_done", RUNNING.format("+"), RUNNING.format("*"),
     "it = g()\nnext(it)\nassert it.send(2) == 2 and it.send(3) == 5\ntry:\n    next(it)\nexcept StopIteration:\n"
     "    pass\nelse:\n    assert False\n"),
    ("contextmanager_function", CM.format("'out'"), CM.format("'in'"),
     "log = []\nwith cm(log) as x:\n    assert x == 1 and log == ['in']\nassert log == ['in', 'out']\n"),
]


@pytest.mark.parametrize("name, correct, wrong, tests", CASES, ids=[c[0] for c in CASES])
def test_iterator_verdicts_match_plain_python(name, correct, wrong, tests):
    check_pair(name, correct, wrong, tests)
