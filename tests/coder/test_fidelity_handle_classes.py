"""The handle class of a program's object: named as its class (`type(obj).__name__`, one class per class
object, so two classes of one name differ), callable or a context manager only when the class is, with
only the protocols the class has (`len`, `iter`, operators, collections.abc), and constructible
(`type(obj)(...)`, `dataclasses.replace`). Each case: a correct and a subtly wrong completion, judged
against plain python in both verdict modes; each correct one failed before handle classes."""
from __future__ import annotations

from fidelity import fidelity_suite

MAKE = "def make(v):\n    \"\"\"An object.\"\"\"\n"


def foo(body: str, name: str = "Foo") -> str:
    """A completion of MAKE: class `name` with `self.v = v` and `body`, returning one."""
    return (f"    class {name}:\n        def __init__(self, v):\n            self.v = v\n" + body
            + f"    return {name}(v)\n")


GET = "        def get(self):\n            return self.v\n"
ENTER = "        def __enter__(self):\n            self.v += 1\n            return self\n"
DATACLASS = ("    from dataclasses import dataclass\n    @dataclass\n    class P:\n        x: int\n        y: int = {}\n"
             "        def s(self):\n            return self.x + self.y\n    return P(v)\n")
SUPPRESS = ("        def __enter__(self):\n            return self.v\n"
            "        def __exit__(self, t, e, tb):\n            return t is {}\n")
REMEMBER_FIRST = ("    class Foo:\n        def __init__(self, v):\n            self.v = v\n    global _K\n    try:\n"
                  "        return _K(v)\n    except NameError:\n        _K = Foo\n        return Foo(v)\n")

CASES = [
    ("type_name", MAKE, foo(GET), foo(GET, "Bar"),
     "def check(candidate):\n    o = candidate(3)\n    assert type(o).__name__ == 'Foo'\n    assert o.get() == 3\n"),
    ("class_name_attr", MAKE, foo(GET), foo(GET, "Bar"),
     "def check(candidate):\n    o = candidate(3)\n    assert o.__class__.__name__ == 'Foo'\n"),
    ("repr_type", MAKE, foo(GET), foo(GET, "Bar"),
     "def check(candidate):\n    o = candidate(3)\n    assert 'Foo' in repr(type(o))\n"
     "    assert type(o).__qualname__.endswith('Foo')\n"),
    ("callable_false", MAKE, foo(GET), foo(GET + "        def __call__(self):\n            return self.v\n"),
     "def check(candidate):\n    o = candidate(3)\n    assert not callable(o)\n    assert o.get() == 3\n"),
    ("callable_kwargs", MAKE, foo("        def __call__(self, x=0, *, y=1):\n            return self.v + x * y\n"),
     foo("        def __call__(self, x=0, *, y=1):\n            return self.v + x + y\n"),
     "def check(candidate):\n    o = candidate(3)\n    assert o(2, y=5) == 13 and o() == 3 and callable(o)\n"),
    ("context_manager", MAKE,
     foo(ENTER + "        def __exit__(self, *a):\n            self.v -= 1\n            return False\n"),
     foo(ENTER + "        def __exit__(self, *a):\n            return False\n"),
     "def check(candidate):\n    o = candidate(3)\n    with o as p:\n        assert p.v == 4 and p is o\n    assert o.v == 3\n"),
    ("suppressing_context_manager", MAKE, foo(SUPPRESS.format("KeyError")), foo(SUPPRESS.format("ValueError")),
     "def check(candidate):\n    with candidate(3) as v:\n        assert v == 3\n        raise KeyError('k')\n"
     "    try:\n        with candidate(1):\n            raise ValueError('v')\n    except ValueError:\n        pass\n"
     "    else:\n        assert False\n"),
    ("dataclass_replace", "def make(v):\n    \"\"\"A dataclass.\"\"\"\n", DATACLASS.format(0), DATACLASS.format(1),
     "def check(candidate):\n    import dataclasses\n    o = candidate(3)\n    q = dataclasses.replace(o, y=5)\n"
     "    assert q.s() == 8 and o.s() == 3\n"),
    ("abc_checks", MAKE,
     foo("        def __iter__(self):\n            return iter(range(self.v))\n"
         "        def __len__(self):\n            return self.v\n"),
     foo("        def __getitem__(self, i):\n            return list(range(self.v))[i]\n"
         "        def __len__(self):\n            return self.v\n"),
     "def check(candidate):\n    from collections.abc import Iterable, Sized, Container\n    o = candidate(3)\n"
     "    assert isinstance(o, Iterable) and isinstance(o, Sized) and not isinstance(o, Container)\n"
     "    assert list(o) == [0, 1, 2] and 2 in o\n"),
    ("getitem_iteration", MAKE,
     foo("        def __getitem__(self, i):\n            if i >= self.v:\n                raise IndexError(i)\n"
         "            return i * i\n"),
     foo("        def __getitem__(self, i):\n            if i > self.v:\n                raise IndexError(i)\n"
         "            return i * i\n"),
     "def check(candidate):\n    assert list(candidate(3)) == [0, 1, 4]\n    assert 4 in candidate(3) and 9 not in candidate(3)\n"),
    ("no_len", MAKE, foo(GET), foo(GET + "        def __len__(self):\n            return 1\n"),
     "def check(candidate):\n    o = candidate(3)\n    try:\n        len(o)\n    except TypeError as e:\n"
     "        assert 'Foo' in str(e)\n    else:\n        assert False\n    assert not hasattr(o, '__len__')\n"),
    ("iadd_falls_back_to_add", MAKE, foo("        def __add__(self, k):\n            return Foo(self.v + k)\n"),
     foo("        def __add__(self, k):\n            return Foo(self.v + k + 1)\n"),
     "def check(candidate):\n    o = candidate(3)\n    p = o\n    o += 2\n    assert o.v == 5 and p.v == 3 and o is not p\n"),
    ("two_classes_one_name", MAKE, foo(GET), REMEMBER_FIRST,
     "def check(candidate):\n    a, b = candidate(1), candidate(2)\n    assert type(a) is not type(b)\n"
     "    assert type(a).__name__ == type(b).__name__ == 'Foo'\n    assert type(a)(5).v == 5\n"),
]

results, test_verdict_matches_plain_python = fidelity_suite(CASES)
