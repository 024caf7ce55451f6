"""A container one call takes or answers, changed by a later call because the program kept it: an internal
list it returned (the tests' copy must follow, or not if it should have been a copy), a list a generator
of its consumes, a registry a returned closure edits. Each case is a correct and a subtly wrong program,
judged by proofcode in both verdict modes and by a plain python run of program + tests. Before the
replay applied such later changes, each wrong one passed or each correct one failed."""
from __future__ import annotations

import pytest
from fidelity import check_pair

SNAPSHOT = ("class S:\n    def __init__(self):\n        self.items = [1, 2]\n    def snapshot(self):\n        return {}\n"
            "    def push(self, x):\n        self.items.append(x)\n")
KEEPER = "class S:\n    def __init__(self, data):\n        self.data = {}\n    def clear(self):\n        self.data.clear()\n"
CONSUME = "def consume(xs):\n    while xs:\n        yield xs.{}\n"
REGISTER = ("def register(reg, name):\n    reg.append(name)\n    def undo():\n        reg.{}\n    return undo\n")
POP = "class S:\n    def __init__(self):\n        self.ts = [1, 2]\n    def pop(self):\n        return self.ts.{}\n"
VIEW = ("class Reg:\n    def __init__(self):\n        self.d = {{}}\n    def view(self):\n        return self.d\n"
        "    def put(self, k, v):\n        self.d[k] = {}\n")
CACHE = "_cache = []\ndef remember(x):\n    _cache.append(x)\n    return {}\ndef forget():\n    _cache.clear()\n"

POINTS = ("class Pt:\n    def __init__(self, x, y):\n        self.x, self.y = x, y\n    def __eq__(self, o):\n"
          "        return (self.x, self.y) == (o.x, o.y)\n    def __hash__(self):\n        return {}\n"
          "def unique_points(pairs):\n    return set(Pt(x, y) for x, y in pairs)\n")
CARDS = ("from dataclasses import dataclass\n@dataclass(order=True, frozen=True)\nclass Card:\n    rank: int\n    suit: str\n"
         "    def label(self):\n        return {}\ndef hand(spec):\n    return [Card(int(s[:-1]), s[-1]) for s in spec.split()]\n")

SCHEDULER = ("class Task:\n    def __init__(self, name, pri):\n        self.name, self.pri = name, pri\n"
             "class Scheduler:\n    def __init__(self):\n        self.tasks = []\n    def add(self, name, pri):\n"
             "        t = Task(name, pri)\n        self.tasks.append(t)\n        return t\n    def next(self):\n"
             "        t = {}(self.tasks, key=lambda t: t.pri)\n        self.tasks.remove(t)\n        return t\n")

CASES = [
    # The tests read the program's own list of its objects, then a method walks it: the program must not
    # meet the tests' handles in its list (the tests get a copy, which follows the program's changes).
    ("the_programs_list_of_its_objects", SCHEDULER.format("max"), SCHEDULER.format("min"),
     "s = Scheduler()\na = s.add('a', 1)\nb = s.add('b', 5)\nx = s.tasks\nassert a in x\nassert s.next() is b\n"
     "assert x == [a] and x is s.tasks\nassert [t.name for t in s.tasks] == ['a']\n"),
    # Not changes: the answer's own objects put into the tests' set or list as handles (a hash is a call).
    ("set_of_the_programs_objects", POINTS.format("hash((self.x, self.y))"), POINTS.format("id(self)"),
     "u = unique_points([(1, 2), (1, 2), (3, 4)])\nassert len(u) == 2\nassert sorted((p.x, p.y) for p in u) == [(1, 2), (3, 4)]\n"),
    ("list_of_ordered_dataclasses", CARDS.format("f'{self.rank}{self.suit}'"), CARDS.format("f'{self.suit}{self.rank}'"),
     "h = hand('10H 2S 7D')\nassert [c.label() for c in sorted(h)] == ['2S', '7D', '10H']\nassert max(h).rank == 10\n"
     "assert len(set(h + hand('2S'))) == 3\n"),
    ("returned_internal_list_must_be_a_copy", SNAPSHOT.format("list(self.items)"), SNAPSHOT.format("self.items"),
     "s = S()\nx = s.snapshot()\ns.push(3)\nassert x == [1, 2]\n"),
    ("constructor_must_copy_its_argument", KEEPER.format("list(data)"), KEEPER.format("data"),
     "a = [1, 2]\ns = S(a)\ns.clear()\nassert a == [1, 2]\n"),
    ("module_cache_must_not_leak", CACHE.format("list(_cache)"), CACHE.format("_cache"),
     "r = remember(1)\nforget()\nassert r == [1]\n"),
    ("generator_consumes_its_argument", CONSUME.format("pop()"), CONSUME.format("pop(0)"),
     "a = [1, 2, 3]\ng = consume(a)\nassert next(g) == 3\nassert a == [1, 2]\n"),
    ("closure_edits_the_registry", REGISTER.format("remove(name)"), REGISTER.format("append(name)"),
     "reg = []\nu = register(reg, 'a')\nassert reg == ['a']\nu()\nassert reg == []\n"),
    ("attribute_list_follows_later_calls", POP.format("pop()"), POP.format("pop(0)"),
     "s = S()\nx = s.ts\nassert s.pop() == 2\nassert x == [1]\n"),
    ("returned_dict_view_follows", VIEW.format("v"), VIEW.format("-v"),
     "r = Reg()\nv = r.view()\nr.put('a', 1)\nassert v == {'a': 1}\n"),
]


@pytest.mark.parametrize("name, correct, wrong, tests", CASES, ids=[c[0] for c in CASES])
def test_later_changes_verdicts_match_plain_python(name, correct, wrong, tests):
    check_pair(name, correct, wrong, tests)
