"""Objects of the candidate's own classes, as the tests hold them: handles whose every use is a call.

The trusted replay cannot rebuild an object whose class only the program defines (its methods are
candidate code). Both stages give the tests a `Handle` instead; each attribute read, method call and
protocol use (len, iter, reversed, item access, str/repr/format, bool, hash, arithmetic, copy) is one
recorded call to the candidate (named "#n", like a returned closure's), whose plain answer the trusted
tests then judge.
Comparisons are never the candidate's to decide: `==` between two handles replays only when the
recorded answer is what the objects' recorded data says (identity for classes without their own
`__eq__`, equal class and attributes for those with one); against any other value, or for ordering,
the replay cannot grade it (`Unsupported`), except between two objects of an `order=True` dataclass
(decided from their recorded fields). Each class of the program has one handle class per session,
named as it is (`type(obj).__name__`, `type(a) is type(b)`), callable or a context manager only when the
program's class is, and a dataclass's has its fields; calling it constructs another object of the
program's class (a recorded call, as `type(obj)(...)` and `dataclasses.replace` do).
"""
from __future__ import annotations

import copy
import functools
import operator

# Binary operators the tests may apply to a candidate's object (the reflected form swaps operands).
_BINARY = ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "matmul", "and", "or", "xor",
           "lshift", "rshift")
_UNARY = ("neg", "pos", "abs", "invert")


class HandleMismatch(Exception):
    """A recorded comparison the objects' recorded data contradicts (raised as a replay mismatch)."""


class HandleType(type):
    """The class of every handle class: `type(type(x)) is HandleType` says `x` is a handle (a type the
    program cannot give its own objects). Calling a handle class constructs another object of the program's
    class and reading a class attribute (`P.parse`, `P.count`) reads the program's class: recorded calls,
    by name for the classes the tests name (`entry_class`), else through the first object of the class."""

    def __call__(cls, *args, **kwargs):
        make = cls.__dict__.get("_pc_make")
        if make is not None:
            return make(*args, **kwargs)
        first = cls.__dict__.get("_pc_first")
        if first is None:
            raise TypeError(f"cannot create {cls.__name__!r} instances")
        return first._pc("new", *args, **kwargs)

    def __getattr__(cls, name):
        if name.startswith("_pc_") or name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        read, first = cls.__dict__.get("_pc_attr"), cls.__dict__.get("_pc_first")
        if read is not None:
            return read(name)
        if first is not None:
            return first._pc("classattr", name)
        raise AttributeError(name)

    def __instancecheck__(cls, obj):
        if type.__instancecheck__(cls, obj):
            return True
        name = cls.__dict__.get("_pc_name")  # a subclass's object, or a stand-in rebuilt from its data
        return name is not None and is_instance(obj, name, cls.__dict__["_pc_desc_of"](obj))

    def __subclasscheck__(cls, sub):
        if type.__subclasscheck__(cls, sub):
            return True
        name, desc_of_sub = cls.__dict__.get("_pc_name"), getattr(sub, "__dict__", {}).get("_pc_class_desc")
        return name is not None and _derives(desc_of_sub, name)


def is_handle(x) -> bool:
    return type(type(x)) is HandleType


class Handle(metaclass=HandleType):
    """One object of the candidate's, in either stage: `_pc_op(op, *args)` is the session's call."""

    __slots__ = ("_pc_op", "_pc_n", "_pc_desc", "__weakref__")

    def __init__(self, op, n: int, desc: list):
        object.__setattr__(self, "_pc_op", op)
        object.__setattr__(self, "_pc_n", n)
        object.__setattr__(self, "_pc_desc", desc)

    def _pc(self, op: str, *args, **kwargs):
        return object.__getattribute__(self, "_pc_op")(op, *args, **kwargs)

    def __getattr__(self, name):
        if name.startswith("_pc_"):
            raise AttributeError(name)
        return self._pc("getattr", name)

    def __setattr__(self, name, value):
        self._pc("setattr", name, value)

    def __delattr__(self, name):
        self._pc("delattr", name)

    def __copy__(self):  # the candidate's copy (a new handle), not a second handle of the same object
        return self._pc("copy")

    def __deepcopy__(self, memo):
        return self._pc("deepcopy")

    def __format__(self, spec):
        return self._pc("format", spec)

    def __str__(self):
        return self._pc("str")

    def __repr__(self):
        return self._pc("repr")

    def __hash__(self):
        return self._pc("hash")

    def __eq__(self, other):
        return self._pc("eq", other)

    def __ne__(self, other):
        return not self._pc("eq", other)

    def __lt__(self, other):
        return self._pc("order", "lt", other)

    def __le__(self, other):
        return self._pc("order", "le", other)

    def __gt__(self, other):
        return self._pc("order", "gt", other)

    def __ge__(self, other):
        return self._pc("order", "ge", other)


def _binary(name: str, reflected: bool):
    def method(self, other):
        return self._pc("bin", name, reflected, other)

    method.__name__ = f"__{'r' if reflected else ''}{name}__"
    return method


def _inplace(name: str):  # `h += x`: the candidate's __iadd__
    def method(self, other):
        return self._pc("inplace", name, other)

    method.__name__ = f"__i{name}__"
    return method


def _protocol(op: str):
    def method(self, *args):
        return self._pc(op, *args)

    method.__name__ = f"__{op}__"
    return method


def _exit(self, exc_type, exc, tb):  # the traceback stays here: __exit__ gets None for it
    return self._pc("exit", exc_type, exc, None)


# Protocols a handle class has only when the program's class has them (its description's "has"), so
# `callable`, `with`, `len`, `iter`, operators and the collections.abc checks see what the class has;
# a missing one fails (or falls back: `in` to iteration, `+=` to `+`) as it does on the object.
_OPTIONAL = {
    "__call__": lambda self, *args, **kwargs: self._pc("call", *args, **kwargs),
    "__exit__": _exit,
    **{f"__{op}__": _protocol(op) for op in ("enter", "len", "iter", "next", "bool", "int", "float", "index",
                                             "reversed", "getitem", "setitem", "delitem", "contains")},
    **{f"__{name}__": _binary(name, False) for name in _BINARY},
    **{f"__r{name}__": _binary(name, True) for name in _BINARY},
    **{f"__i{name}__": _inplace(name) for name in _BINARY},
    **{f"__{name}__": (lambda n: lambda self: self._pc("unary", n))(name) for name in _UNARY},
}
OPTIONAL_PROTOCOLS = tuple(_OPTIONAL)
_MAX_FIELDS = 1000  # a description with more is not given the dataclass shape (the server builds it)


def _extra(cls_desc) -> dict:
    """The class-specific part of a recorded class description (enum members, dataclass fields...), or {}."""
    return cls_desc[3] if type(cls_desc) is list and len(cls_desc) > 3 and type(cls_desc[3]) is dict else {}


def make(op, n: int, cls_desc: list, classes: dict) -> Handle:
    """The handle of the program's object `n` with class description `cls_desc`; `classes` is the session's
    handle classes by class number (see `handle_class`)."""
    handle = object.__new__(handle_class(cls_desc, classes))
    Handle.__init__(handle, op, n, cls_desc)
    if type(handle).__dict__["_pc_first"] is None:
        type.__setattr__(type(handle), "_pc_first", handle)
    return handle


def handle_class(cls_desc: list, classes: dict) -> HandleType:
    """The handle class of the program's class described by `cls_desc`: one per class number (`extra["class"]`,
    the program's classes numbered in the session), the tests' stand-in when the class is one they name
    (`extra["entry"]`), with the class's module, qualified name, dataclass fields and optional protocols
    (`extra["has"]`), given when its first object is."""
    extra = _extra(cls_desc)
    key, entry = extra.get("class"), extra.get("entry")
    cls = classes.get(key) if type(key) is int else None
    if cls is None and type(entry) is str:
        cls = classes.get(("entry", entry))
    if cls is None:
        module, qualname = (cls_desc[:2] if type(cls_desc) is list and len(cls_desc) > 1
                            and all(type(v) is str for v in cls_desc[:2]) else ["?", "?"])
        cls = HandleType(qualname.rsplit(".", 1)[-1] or "?", (Handle,),
                         {"__slots__": (), "__module__": module, "__qualname__": qualname, "_pc_first": None})
    if "_pc_class_desc" not in cls.__dict__:
        _complete(cls, cls_desc, extra)
    if type(key) is int:
        classes[key] = cls
    return cls


def _complete(cls: HandleType, cls_desc: list, extra: dict) -> None:
    """Give a handle class what its program class has: optional protocols, dataclass fields, description."""
    has = extra.get("has")
    for name in has if type(has) is list else []:
        if name in _OPTIONAL:
            type.__setattr__(cls, name, _OPTIONAL[name])
    names = extra.get("dataclass")
    if type(names) is list and len(names) <= _MAX_FIELDS and all(type(f) is str for f in names):
        fields = _fields(tuple(names))
        if fields is not None:  # `dataclasses.fields`/`asdict`/`replace` read them as recorded attributes
            type.__setattr__(cls, "__dataclass_fields__", fields)
    type.__setattr__(cls, "_pc_class_desc", cls_desc)


@functools.lru_cache(maxsize=256)
def _fields(names: tuple[str, ...]) -> dict | None:
    import dataclasses

    try:
        return dataclasses.make_dataclass("Fields", names).__dataclass_fields__
    except TypeError:  # repeated or reserved names: not what a real dataclass has
        return None


def number(handle: Handle) -> int:
    return object.__getattribute__(handle, "_pc_n")


def desc(handle: Handle) -> list:
    return object.__getattribute__(handle, "_pc_desc")


def perform(obj, op: str, *args, **kwargs):
    """Stage 1: what the tests' use `op` of a handle does to the candidate's real object `obj`
    (arguments already unwrapped). Comparisons also answer both objects' data, for the replay's check."""
    if op == "getattr":
        return getattr(obj, args[0])
    if op == "setattr":
        return setattr(obj, args[0], args[1])
    if op == "delattr":
        return delattr(obj, args[0])
    if op == "call":
        return obj(*args, **kwargs)
    if op == "new":
        return type(obj)(*args, **kwargs)
    if op == "classattr":
        return getattr(type(obj), args[0])
    if op == "enter":
        return type(obj).__enter__(obj)
    if op == "exit":
        return type(obj).__exit__(obj, *args)
    if op in _PROTOCOL:
        return _PROTOCOL[op](obj, *args)
    if op == "eq":
        other = args[0]
        own = type(obj).__eq__ is not object.__eq__
        return [bool(obj == other), own, _data(obj), _data(other)]
    if op == "order":
        other = args[1]
        return [bool(getattr(operator, args[0])(obj, other)), _data(obj), _data(other)]
    if op == "bin":
        name, reflected, other = args
        fn = getattr(operator, name + "_" if name in ("and", "or") else name)
        return fn(other, obj) if reflected else fn(obj, other)
    if op == "unary":
        return getattr(operator, args[0])(obj)
    if op == "inplace":
        return getattr(operator, "i" + args[0])(obj, args[1])
    raise TypeError(f"unknown handle operation {op!r}")


_PROTOCOL = {"len": len, "iter": iter, "next": next, "getitem": operator.getitem, "setitem": operator.setitem,
             "delitem": operator.delitem, "contains": lambda o, x: x in o, "str": str, "repr": repr,
             "bool": bool, "hash": hash, "int": int, "float": float, "index": operator.index,
             "copy": copy.copy, "deepcopy": copy.deepcopy, "format": format, "reversed": reversed}


def _data(obj) -> object:
    d = getattr(obj, "__dict__", None)
    return dict(d) if type(d) is dict else None


def replay_answer(handle: Handle, op: str, args: tuple, answer):
    """Stage 2: the recorded answer of `op`, or, for comparisons, the trusted decision."""
    from coder.sandbox.plain import Unsupported

    if op == "order":
        return _dataclass_order(handle, args, answer)
    if op != "eq":
        return answer
    other = args[0]
    if type(answer) is not list or len(answer) != 4 or type(answer[0]) is not bool:
        raise ValueError("malformed recording: comparison")
    said, own, mine, theirs = answer
    if not is_handle(other):
        if own is False:  # object.__eq__: identity, and a handle is nobody else's object
            expected = False
        else:
            raise Unsupported("the tests compare the candidate's own object with a value (its __eq__ is the "
                              "candidate's): not graded")
    elif number(other) == number(handle):
        expected = True
    elif own is False:
        expected = False
    else:
        expected = desc(other)[:2] == desc(handle)[:2] and same(mine, theirs)
    if said is not expected:
        raise HandleMismatch(f"the candidate's {desc(handle)[1]}.__eq__ answered {said} where its recorded data "
                             f"says {expected}")
    return expected


_ORDERABLE = (int, float, str, bool)


def _dataclass_order(handle: Handle, args: tuple, answer):
    """`<`, `<=`, `>`, `>=` between two objects of the program's `order=True` dataclass, decided as that
    ordering does (field tuples), from their recorded plain fields; any other ordering is not graded."""
    from coder.sandbox.plain import Unsupported

    if type(answer) is not list or len(answer) != 3 or type(answer[0]) is not bool or args[0] not in _ORDER:
        raise ValueError("malformed recording: comparison")
    said, mine, theirs = answer
    d, other = desc(handle), args[1]
    extra = _extra(d)
    fields = extra.get("dataclass")
    try:
        if (extra.get("order") is not True or type(fields) is not list or not is_handle(other)
                or desc(other)[:2] != d[:2] or type(mine) is not dict or type(theirs) is not dict):
            raise TypeError
        a, b = [tuple(data[f] for f in fields) for data in (mine, theirs)]
        if not all(type(v) in _ORDERABLE for v in a + b):
            raise TypeError
        expected = bool(_ORDER[args[0]](a, b))
    except (TypeError, KeyError):
        raise Unsupported("the tests order the candidate's own objects (their __lt__ is the candidate's): "
                          "not graded") from None
    if said is not expected:
        raise HandleMismatch(f"the candidate's {d[1]} ordering answered {said} where its recorded fields say {expected}")
    return expected


_ORDER = {"lt": operator.lt, "le": operator.le, "gt": operator.gt, "ge": operator.ge}


def same(a, b) -> bool:
    """Equality of recorded data decided by trusted code only: handles by identity, containers item by item."""
    if is_handle(a) or is_handle(b):
        return a is b
    if type(a) is not type(b):
        return False
    if type(a) in (list, tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if type(a) is dict:
        return a.keys() == b.keys() and all(same(v, b[k]) for k, v in a.items())
    if type(a) in (int, float, str, bool, bytes, type(None), complex):
        return a == b
    if type(a) in (set, frozenset):
        return a == b
    return False


def is_instance(obj, name: str, cls_desc: list | None) -> bool:
    """isinstance(obj, <the program's class `name`>), from recorded class descriptions in both stages."""
    return _derives(desc(obj) if is_handle(obj) else cls_desc, name)


def _derives(d, name: str) -> bool:
    """Whether the class described by `d` is the program's class `name` or derives from it."""
    if type(d) is not list or len(d) < 3:
        return False
    return (d[0] == "__candidate__" and d[1] == name) or ["__candidate__", name] in (d[2] if type(d[2]) is list else [])


def entry_class(name: str, call, read, desc_of, classes: dict) -> HandleType:
    """The stand-in the tests see for the program's class `name`: calling it and reading its attributes are
    recorded calls (`call`, `read(attribute)`), isinstance checks the recorded class description, and it is
    also the handle class of that class's objects (`type(obj) is Node`)."""
    cls = HandleType(name, (Handle,), {
        "__slots__": (), "__module__": "__candidate__", "__qualname__": name, "_pc_first": None,
        "_pc_make": staticmethod(call), "_pc_attr": staticmethod(read), "_pc_name": name,
        "_pc_desc_of": staticmethod(desc_of)})
    classes[("entry", name)] = cls
    return cls


def unwrap(value, real, memo=None):
    """Stage 1: the tests' arguments with handles replaced by the candidate's real objects (plain
    containers copied only when they hold one), so candidate code never touches a handle."""
    t = type(value)
    if type(t) is HandleType:
        return real(value)
    if t not in (list, tuple, dict, set, frozenset):
        return value
    memo = {} if memo is None else memo
    if id(value) in memo:
        return memo[id(value)]
    memo[id(value)] = value
    if t is dict:
        items = [(unwrap(k, real, memo), unwrap(v, real, memo)) for k, v in value.items()]
        changed = any(k is not k0 or v is not v0 for (k, v), (k0, v0) in zip(items, value.items()))
        out = dict(items) if changed else value
    else:
        items = [unwrap(v, real, memo) for v in value]
        changed = any(a is not b for a, b in zip(items, value))
        out = t(items) if changed else value
    memo[id(value)] = out
    return out
