"""Values crossing from the candidate to the tests, as JSON, and back, without running candidate code.

Stage 1 (untrusted) encodes each argument, result and exception; stage 2 (trusted) decodes them. The
encoder reads only exact types (`type(x) is list`, never isinstance) with builtin methods. The format:
strings, numbers, booleans and null stand for themselves; every JSON list is a tagged node.

Identity: every container gets the next number the first time it is met (arguments first, then the
result), and a later meeting is ["r", n]; so aliasing, `result is arg` and in-place changes survive.
The decoder (`coder.sandbox.rebuild`, run by the trusted side) rebuilds only trusted things: builtin
and stdlib values, classes the trusted side defines (the prompt, the tests), and *stand-ins* made by
trusted code from a plain description (a candidate's exception, enum, namedtuple, dataclass or str/int
subclass keeps its name, bases and data, never its methods: an always-equal `__eq__` does not survive).
Anything else is ["X", type] and is not graded by the replay.
"""
from __future__ import annotations

import collections
import datetime
import decimal
import enum
import fractions
import math
import sys
import types

from coder.sandbox import frames
from coder.sandbox.handles import OPTIONAL_PROTOCOLS, HandleType, number

MAX_NODES = 50_000_000
_DEEP = 50_000  # recursion headroom while encoding or decoding deeply nested values

_CONTAINERS = {list: "l", tuple: "t", set: "s", frozenset: "F"}
_BUILD = {"l": list, "t": tuple, "s": set, "F": frozenset}
_MAPPINGS = {collections.Counter: "Counter", collections.OrderedDict: "OrderedDict",
             collections.defaultdict: "defaultdict", dict: "dict"}
# Exact stdlib value types rebuilt from their own reduce arguments (all plain or of this table).
_VALUES = {decimal.Decimal: "decimal.Decimal", fractions.Fraction: "fractions.Fraction",
           datetime.date: "datetime.date", datetime.datetime: "datetime.datetime",
           datetime.time: "datetime.time", datetime.timedelta: "datetime.timedelta",
           datetime.timezone: "datetime.timezone"}
_VALUE_TYPES = {name: cls for cls, name in _VALUES.items()}
# Builtin value types a candidate's subclass is rebuilt on (as a stand-in of the same name).
_BASES = (str, int, float, complex, bytes, tuple, list, dict, set, frozenset)
_ITERATORS = (types.GeneratorType, map, filter, zip, enumerate, reversed, type(iter([])), type(iter(())),
              type(iter({})), type(iter(set())), type(iter("")), type(iter(range(0))), type({}.items().__iter__()))
_NAME_CHARS = 200


def _context_manager(t: type) -> bool:
    """Whether objects of `t` (not a plain value's class) can be used in `with`."""
    return t.__module__ not in ("builtins", "__candidate__") and all(
        any(name in vars(c) for c in t.__mro__[:-1]) for name in ("__enter__", "__exit__"))


class Unsupported(TypeError):
    """The candidate produced a value the replay cannot rebuild faithfully."""


class _TooBig(Exception):
    pass


def _own_behaviour(cls: type) -> bool:
    """Whether the program's dataclass has methods or properties of its own (`__post_init__` aside), which
    the tests may call: its objects are then handles like any other class's, not fields-only stand-ins.
    Only decides how an answer is sent; either way the replay, not this, judges it."""
    try:
        for klass in type.__dict__["__mro__"].__get__(cls):
            if type.__dict__["__module__"].__get__(klass) != "__candidate__":
                continue
            for name, value in dict.items(type.__dict__["__dict__"].__get__(klass)):
                if name == "__post_init__":
                    continue
                if isinstance(value, (property, staticmethod, classmethod)):
                    return True
                code = getattr(value, "__code__", None) if isinstance(value, types.FunctionType) else None
                # what @dataclass writes is exec'd ("<string>") or its own wrapper (__repr__)
                if code is not None and code.co_filename != "<string>" and not code.co_filename.endswith("dataclasses.py"):
                    return True
    except Exception:
        return True  # an odd class: a handle (every use recorded) is the general path
    return False


def _name(cls: type) -> tuple[str, str]:
    module, qualname = getattr(cls, "__module__", None), getattr(cls, "__qualname__", None)
    return (module if type(module) is str else "?")[:_NAME_CHARS], (qualname if type(qualname) is str else "?")[:_NAME_CHARS]


class Encoder:
    """One call's encoder: numbering shared by its arguments, result and after-state.

    `live`: stage 1 only; untrusted callables and iterators in a result become handles the stage
    replaces by recorders (`handles` lists them in order) instead of unsupported values.
    """

    def __init__(self, live: bool = False, first_handle: int = 0, known: dict | None = None,
                 objects: dict | None = None, trusted: frozenset = frozenset(), class_numbers: dict | None = None,
                 entry_names: dict | None = None):
        self.memo: dict[int, int] = {}
        self.objects = objects  # id -> handle number of the candidate's objects handed out (stage 1)
        self.class_numbers = {} if class_numbers is None else class_numbers  # id -> number of their classes
        self.entry_names = entry_names or {}  # id -> name of the program's classes the tests name
        self.handle_descs: dict[int, list] = {}  # handle number -> class description, for stage 1's own handle
        self.trusted = trusted  # qualnames of the classes the prompt and the tests define
        self.classes: dict[str, type] = {}  # the tests' own classes met in arguments (stage 2 finds them here)
        self.known = known  # id -> number of objects answered by earlier calls (the session's `Answered`)
        self.objs: list = []
        self.budget = MAX_NODES
        self.live = live
        self.in_args = False
        self.handles: list[tuple[int, str, object]] = []
        self.next_handle = first_handle
        self.foreign: list[type] = []  # classes of values recorded as unsupported (["X"])

    def encode(self, value: object, args: bool = False) -> object:
        self.in_args = args
        limit = sys.getrecursionlimit()
        if limit < _DEEP:
            sys.setrecursionlimit(_DEEP)
        try:
            return self._enc(value)
        except _TooBig:
            return ["X", "value too large", "?"]
        except RecursionError:
            return ["X", "value nested too deeply", "?"]
        finally:
            if limit < _DEEP:
                sys.setrecursionlimit(limit)

    def _number(self, x: object) -> None:
        self.memo[id(x)] = len(self.objs)
        self.objs.append(x)

    def _enc(self, x: object) -> object:
        self.budget -= 1
        if self.budget < 0:
            raise _TooBig
        t = type(x)
        if x is None or t is bool or t is str:
            return x
        if t is int:
            return x if -(1 << 62) < x < (1 << 62) else ["I", hex(x)]
        if t is float:
            return x if math.isfinite(x) else ["f", repr(x), "math"] if x is math.nan else ["f", repr(x)]
        if type(t) is HandleType:
            return ["p", number(x)]
        seen = self.memo.get(id(x))
        if seen is not None:
            return ["r", seen]
        if self.known is not None and not self.in_args and id(x) in self.known:
            return self._earlier(x)
        tag = _CONTAINERS.get(t)
        if tag is not None:
            if self.in_args and len(x) > 32 and t is not set:
                flat = self._fingerprint(x, t)
                if flat is not None:
                    return flat
            self._number(x)
            return [tag, [self._enc(v) for v in (list.__iter__(x) if t is list else t.__iter__(x))]]
        kind = _MAPPINGS.get(t)
        if kind is not None:
            self._number(x)
            items = [[self._enc(k), self._enc(v)] for k, v in _items(x)]
            if kind == "dict":
                return ["d", items]
            extra = self._enc(x.default_factory) if kind == "defaultdict" else None
            return ["D", kind, items, extra]
        if t is bytes:
            return ["b", bytes.hex(x)]
        if t is complex:
            return ["c", self._enc(x.real), self._enc(x.imag)]
        return self._enc_other(x, t)

    def _fingerprint(self, x, t: type):
        """Arguments are only compared, never rebuilt: a long list or tuple of exact ints or strs is
        numbered and stands for its hash, not its encoding (hundreds of calls with large lists)."""
        kinds = set(map(type, x))
        if kinds != {int} and kinds != {str}:
            return None
        self._number(x)
        self.budget -= len(x)
        return ["H", _CONTAINERS[t], len(x), hash(tuple(x))]

    def _earlier(self, x: object) -> list:
        """An object an earlier call answered (a memoized list, a mutable default), with its contents now."""
        n = self.known[id(x)]
        self._number(x)
        return ["R", n, contents(self, x)]

    def _enc_other(self, x: object, t: type) -> object:
        if t is collections.deque:
            self._number(x)
            return ["q", [self._enc(v) for v in collections.deque.__iter__(x)], x.maxlen]
        if t is bytearray:
            self._number(x)
            return ["ba", bytearray.hex(x)]
        if t is range:
            return ["rg", x.start, x.stop, x.step]
        if t is slice:
            return ["sl", self._enc(x.start), self._enc(x.stop), self._enc(x.step)]
        if x is Ellipsis or x is NotImplemented:
            return ["N", "builtins", "Ellipsis" if x is Ellipsis else "NotImplemented"]
        if t in _VALUES:
            self._number(x)
            return ["V", _VALUES[t], self._enc(list(x.__reduce__()[1]))]
        if isinstance(t, enum.EnumMeta) and isinstance(x, enum.Enum):
            return ["E", self._classdesc(t), str(x._name_)[:_NAME_CHARS], self._enc(x._value_)]
        if t.__module__ == "numpy" and t.__name__ in _NUMPY_NAMES:
            return self._numpy(x, t)
        if not self.in_args and frames.is_frame(t):
            return frames.encode(self, x, t)
        if isinstance(x, BaseException):
            self._number(x)
            return self.exception(x)
        if isinstance(x, type) or t in (types.BuiltinFunctionType, types.FunctionType, types.MethodType,
                                        types.BuiltinMethodType, types.MethodWrapperType):
            return self._enc_callable(x)
        if self.in_args:  # an object of the tests' own: stage 2 has the same one at the same number
            self._number(x)
            if t.__module__ == "__candidate__":
                self.classes.setdefault(_name(t)[1], t)
            return ["a", list(_name(t)), self._state(x)]
        own = t.__module__ == "__candidate__"
        if self.live and own and self.objects is not None and not self._rebuildable(x, t):
            return self._object_handle(x, t)  # its own iterators too: `next` is one of its protocols
        if self.live and (isinstance(x, _ITERATORS) or own and hasattr(x, "__next__")):
            return self._handle(x, "g")
        if self.live and self.objects is not None and _context_manager(t):  # @contextmanager's, a library's
            return self._object_handle(x, t)
        if self.live and callable(x) and not isinstance(x, _BASES):  # closures, partials, callable objects
            return self._handle(x, "h")
        if isinstance(x, _BASES) or hasattr(x, "__dict__"):
            self._number(x)  # rebuilt when the trusted side defines the class, else as a stand-in if it can be
            self.foreign.append(t)  # if the replay cannot, a compatible verdict must not trust it either
            return ["o", self._classdesc(t), self._base_value(x), self._state(x)]
        if self.live and callable(x):
            return self._handle(x, "h")
        self.foreign.append(t)
        return ["X", f"{_name(t)[0]}.{_name(t)[1]}", _name(t)[0]]

    def _numpy(self, x: object, t: type) -> list:
        """A numpy array or scalar of a numeric dtype: rebuilt by numpy from its dtype and values."""
        kind = str(x.dtype.kind)
        if kind not in _NUMPY_KINDS:
            self.foreign.append(t)
            return ["X", f"numpy.{t.__name__}", "numpy"]
        if t.__name__ != "ndarray":
            return ["np", str(x.dtype.str), self._enc(x.item())]
        self._number(x)
        return ["nd", str(x.dtype.str), [int(n) for n in x.shape], self._enc(x.ravel().tolist())]

    def _enc_callable(self, x: object) -> object:
        if isinstance(x, type) or type(x) is types.BuiltinFunctionType and isinstance(x.__self__, types.ModuleType | None):
            module, qualname = _name(x)
            if getattr(x, "__module__", None) != "__candidate__" or isinstance(x, type):
                if isinstance(x, type) and module == "__candidate__":
                    self.classes.setdefault(qualname, x)
                return ["N", module, qualname]
        if self.in_args:
            self._number(x)
            return ["a", "callable", None]
        if self.live:
            return self._handle(x, "h")
        self.foreign.append(type(x))
        return ["X", "function", "?"]

    def _rebuildable(self, x: object, t: type) -> bool:
        """Whether the replay rebuilds this object of a `__candidate__` class itself (the prompt's or the
        tests' class, or a stand-in: a builtin value subclass, a namedtuple, a dataclass)."""
        return (_name(t)[1] in self.trusted or isinstance(x, _BASES)
                or type(getattr(t, "__dataclass_fields__", None)) is dict and not _own_behaviour(t))

    def _object_handle(self, x: object, t: type) -> list:
        """An object of the candidate's own class: the tests get a handle (see `handles`); the same
        object is the same handle whenever it is answered again."""
        n = self.objects.get(id(x))
        if n is not None:
            self.handles.append((n, "p", x))
            return ["p", n]
        n = self.objects[id(x)] = self.next_handle
        self.next_handle += 1
        self.handles.append((n, "ho", x))
        self.foreign.append(t)  # an in-sandbox pass never trusts the candidate's own class
        desc = self._classdesc(t)
        # Which class (the same qualified name can be two classes: one per call of a function defining it)
        # and which optional protocols its objects have: the handle class of both stages is made from these.
        defined = set().union(*(vars(c) for c in t.__mro__[:-1]))  # `object` has none of them
        desc[3] = {**(desc[3] or {}), "class": self.class_numbers.setdefault(id(t), len(self.class_numbers)),
                   "has": [name for name in OPTIONAL_PROTOCOLS if name in defined]}
        if id(t) in self.entry_names:  # its handle class is the tests' stand-in for it
            desc[3]["entry"] = self.entry_names[id(t)]
        self.handle_descs[n] = desc
        return ["ho", n, desc]

    def _handle(self, x: object, kind: str) -> list:
        n = self.next_handle
        self.next_handle += 1
        self.handles.append((n, kind, x))
        return [kind, n]

    def _state(self, x: object):
        d = getattr(x, "__dict__", None)
        if type(d) is not dict:
            return None
        return [[k, self._enc(v)] for k, v in dict.items(d) if type(k) is str]

    def _base_value(self, x: object):
        for base in _BASES:
            if isinstance(x, base):
                if base in (str, bytes):
                    return self._enc(base.__getitem__(x, slice(None)))
                if base in (int, float, complex):
                    return self._enc(base.__add__(x, 0) if base is not int else int.__index__(x) + 0)
                if base in (dict,):
                    return self._enc(dict(dict.items(x)))
                return self._enc(base(base.__iter__(x)) if base is not list else list(list.__iter__(x)))
        return None

    def _classdesc(self, cls: type) -> list:
        """[module, qualname, [[module, qualname] of each base in the MRO], extra]: what a stand-in needs."""
        mro = getattr(cls, "__mro__", ())
        extra = None
        if isinstance(cls, enum.EnumMeta):
            extra = {"enum": [[str(m._name_), self._enc(m._value_)] for m in list(cls)[:1000]]}
        elif issubclass(cls, tuple) and type(getattr(cls, "_fields", None)) is tuple:
            extra = {"fields": [f for f in cls._fields if type(f) is str]}
        elif type(getattr(cls, "__dataclass_fields__", None)) is dict:
            params = getattr(cls, "__dataclass_params__", None)
            extra = {"dataclass": [f for f in cls.__dataclass_fields__ if type(f) is str],
                     "eq": bool(getattr(params, "eq", True)), "order": bool(getattr(params, "order", False)),
                     "frozen": bool(getattr(params, "frozen", False)),
                     "unsafe_hash": bool(getattr(params, "unsafe_hash", False))}
        return [*_name(cls), [list(_name(b)) for b in mro[1:8] if isinstance(b, type)], extra]

    def exception(self, exc: BaseException) -> list:
        args = exc.args if type(exc.args) is tuple else ()
        node = ["x", self._classdesc(type(exc)), self._enc(list(args)), self._state(exc)]
        cause, context = exc.__cause__, exc.__context__
        if cause is not None or context is not None:  # `raise ... from e` and implicit chaining
            node.append([self._enc(cause), self._enc(context), bool(exc.__suppress_context__)])
        return node


_NUMPY_NAMES = frozenset({"ndarray", "bool_", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
                          "float16", "float32", "float64", "complex64", "complex128", "intc", "uintc",
                          "longlong", "ulonglong", "int_", "uint"})
_NUMPY_KINDS = frozenset("biufc")

def contents(enc: Encoder, obj: object):
    """The current contents of a numbered container, for `assign` after a call (None: immutable)."""
    t = type(obj)
    if t is list:
        return ["l", [enc._enc(v) for v in list.__iter__(obj)]]
    if isinstance(obj, dict) and t.__module__ in ("builtins", "collections"):
        return ["d", [[enc._enc(k), enc._enc(v)] for k, v in _items(obj)]]
    if t is set:
        return ["s", [enc._enc(v) for v in set.__iter__(obj)]]
    if t is bytearray:
        return ["ba", bytearray.hex(obj)]
    if t is collections.deque:
        return ["q", [enc._enc(v) for v in collections.deque.__iter__(obj)]]
    if t.__module__ == "numpy" and t.__name__ == "ndarray":
        return enc._numpy(obj, t)
    if frames.is_frame(t):
        return None  # a frame answered again is the same object; changes between calls are not replayed
    state = enc._state(obj) if not isinstance(obj, (tuple, frozenset, str, bytes, int, float)) else None
    return ["a", state] if state is not None else None


def _items(d: dict):
    """A mapping's items in its own order: an OrderedDict keeps its order apart from the dict's."""
    return collections.OrderedDict.items(d) if isinstance(d, collections.OrderedDict) else dict.items(d)


class ContentsMismatch(ValueError):
    """Recorded contents that do not fit the object they are for."""


def assign(target: object, kind: str, value: object) -> None:
    """Give the trusted side's object the contents the candidate left in stage 1's copy."""
    if kind == "l" and type(target) is list:
        target[:] = value
    elif kind == "d" and isinstance(target, collections.OrderedDict):
        target.clear()  # OrderedDict keeps its own order: only its methods update it
        target.update(value)
    elif kind == "d" and isinstance(target, dict):
        dict.clear(target)
        dict.update(target, value)
    elif kind == "s" and type(target) is set:
        target.clear()
        target.update(value)
    elif kind == "ba" and type(target) is bytearray:
        target[:] = value
    elif kind == "q" and hasattr(target, "extend") and hasattr(target, "clear"):
        target.clear()
        target.extend(value)
    elif kind == "nd" and type(target).__name__ == "ndarray" and getattr(target, "shape", None) == getattr(value, "shape", ()):
        target[...] = value
    elif kind == "a" and type(value) is list and hasattr(target, "__dict__"):
        target.__dict__.clear()
        for k, v in value:
            target.__dict__[k] = v
    elif kind in ("l", "d", "s", "ba", "q", "a", "np", "nd"):
        raise ContentsMismatch("the recorded contents do not match the object")


def encode(value: object) -> object:
    """Plain-data, JSON-serialisable form of `value` (a fresh numbering)."""
    return Encoder().encode(value)


def decode(node: object, ns: dict | None = None) -> object:
    """Inverse of `encode`, run in the trusted process on JSON the child produced (may be forged)."""
    from coder.sandbox.rebuild import Decoder  # imports this module

    return Decoder([], ns or {}).decode(node)
