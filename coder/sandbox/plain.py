"""Values crossing from the candidate to the tests, as JSON, and back, without running candidate code.

Stage 1 (untrusted) encodes each argument, result and exception; stage 2 (trusted) decodes them. The
encoder reads only exact types (`type(x) is list`, never isinstance) with builtin methods. The format:
strings, numbers, booleans and null stand for themselves; every JSON list is a tagged node.

Identity: every container gets the next number the first time it is met (arguments first, then the
result), and a later meeting is ["r", n]; so aliasing, `result is arg` and in-place changes survive.
The decoder rebuilds only trusted things: builtin and stdlib values, classes the trusted side defines
(the prompt, the tests), and *stand-ins* made by trusted code from a plain description (a candidate's
exception, enum, namedtuple, dataclass or str/int subclass keeps its name, bases and data, never its
methods: an always-equal `__eq__` does not survive). Anything else is ["X", type] and is not graded
by the replay.
"""
from __future__ import annotations

import builtins
import collections
import datetime
import decimal
import enum
import fractions
import math
import sys
import types

from coder.sandbox import frames
from coder.sandbox.handles import Handle, number

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


class Unsupported(TypeError):
    """The candidate produced a value the replay cannot rebuild faithfully."""


class _TooBig(Exception):
    pass


def _name(cls: type) -> tuple[str, str]:
    module, qualname = getattr(cls, "__module__", None), getattr(cls, "__qualname__", None)
    return (module if type(module) is str else "?")[:_NAME_CHARS], (qualname if type(qualname) is str else "?")[:_NAME_CHARS]


class Encoder:
    """One call's encoder: numbering shared by its arguments, result and after-state.

    `live`: stage 1 only; untrusted callables and iterators in a result become handles the stage
    replaces by recorders (`handles` lists them in order) instead of unsupported values.
    """

    def __init__(self, live: bool = False, first_handle: int = 0, known: dict | None = None,
                 objects: dict | None = None, trusted: frozenset = frozenset()):
        self.memo: dict[int, int] = {}
        self.objects = objects  # id -> handle number of the candidate's objects handed out (stage 1)
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
        if t is Handle:
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
        if self.live and (isinstance(x, _ITERATORS) or own and hasattr(x, "__next__")):
            return self._handle(x, "g")
        if self.live and own and self.objects is not None and not self._rebuildable(x, t):
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
                or type(getattr(t, "__dataclass_fields__", None)) is dict)

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
        return ["ho", n, self._classdesc(t)]

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


class Decoder:
    """Rebuilds encoded values in the trusted stage. `objs`: the objects numbered so far (the call's own
    arguments, numbered identically); `ns`: the trusted namespace (prompt and tests) whose classes and
    functions results may be instances of; `handle`: makes the replay stand-in of a handle."""

    def __init__(self, objs: list, ns: dict, handle=None, earlier: list | None = None, local: dict | None = None):
        self.objs, self.ns, self.handle = objs, ns, handle
        self.local = local or {}  # the tests' classes met in arguments, by qualname (check.<locals>.Tag)
        self.earlier = earlier if earlier is not None else []  # what earlier calls answered, by number

    def decode(self, node: object) -> object:
        limit = sys.getrecursionlimit()
        if limit < _DEEP:
            sys.setrecursionlimit(_DEEP)
        try:
            return self._dec(node)
        finally:
            if limit < _DEEP:
                sys.setrecursionlimit(limit)

    def _slot(self, value: object) -> int:
        self.objs.append(value)
        return len(self.objs) - 1

    def _dec(self, node: object) -> object:
        if node is None or type(node) in (bool, int, float, str):
            return node
        if type(node) is not list or not node or type(node[0]) is not str:
            raise ValueError("malformed recording")
        tag = node[0]
        if tag == "r":
            return self.objs[node[1]]
        if tag in ("l", "s"):
            out = _BUILD[tag]()
            self._slot(out)
            items = [self._dec(v) for v in node[1]]
            out.extend(items) if tag == "l" else out.update(items)
            return out
        if tag in ("t", "F"):
            i = self._slot(None)
            out = _BUILD[tag](self._dec(v) for v in node[1])
            self.objs[i] = out
            return out
        if tag == "d":
            out = {}
            self._slot(out)
            for k, v in node[1]:
                out[self._dec(k)] = self._dec(v)
            return out
        if tag == "D":
            return self._mapping(node)
        return self._dec_other(tag, node)

    def _mapping(self, node: list) -> object:
        kind = node[1]
        out = {"Counter": collections.Counter, "OrderedDict": collections.OrderedDict}.get(kind, dict)()
        if kind == "defaultdict":
            out = collections.defaultdict()
        self._slot(out)
        setitem = collections.OrderedDict.__setitem__ if kind == "OrderedDict" else dict.__setitem__
        for k, v in node[2]:
            setitem(out, self._dec(k), self._dec(v))
        if kind == "defaultdict":
            factory = self._dec(node[3])
            if factory is not None and not callable(factory):
                raise ValueError("malformed recording: defaultdict factory")
            out.default_factory = factory
        return out

    def _dec_other(self, tag: str, node: list) -> object:
        if tag == "b":
            return bytes.fromhex(node[1])
        if tag == "c":
            return complex(self._dec(node[1]), self._dec(node[2]))
        if tag == "I":
            return int(node[1], 16)
        if tag == "f":
            return math.nan if len(node) > 2 and node[1] == "nan" else float(node[1])
        if tag == "R":
            obj = self.earlier[int(node[1])]
            self._slot(obj)
            if node[2]:
                value = self._dec(node[2]) if node[2][0] != "a" else [[k, self._dec(v)] for k, v in node[2][1] or ()]
                assign(obj, node[2][0], value)
            return obj
        if tag in ("np", "nd"):
            return self._numpy(node)
        if tag in frames.TAGS:
            return frames.decode(self, node)
        if tag == "q":
            out = collections.deque(maxlen=node[2] if type(node[2]) is int and node[2] >= 0 else None)
            self._slot(out)
            out.extend(self._dec(v) for v in node[1])
            return out
        if tag == "ba":
            out = bytearray.fromhex(node[1])
            self._slot(out)
            return out
        if tag == "rg":
            return range(int(node[1]), int(node[2]), int(node[3]))
        if tag == "sl":
            return slice(self._dec(node[1]), self._dec(node[2]), self._dec(node[3]))
        if tag == "V":
            i = self._slot(None)
            cls = _VALUE_TYPES.get(node[1])
            if cls is None:
                raise ValueError("malformed recording: value type")
            self.objs[i] = cls(*self._dec(node[2]))
            return self.objs[i]
        if tag == "E":
            return self._enum(node[1], node[2], self._dec(node[3]) if len(node) > 3 else None)
        if tag == "x":
            i = self._slot(None)
            self.objs[i] = self.exception(node)
            return self.objs[i]
        if tag == "o":
            return self._object(node)
        if tag == "N":
            return self._named(node[1], node[2])
        if tag in ("h", "g", "ho", "p") and self.handle is not None:
            return self.handle(tag, int(node[1]), node)
        if tag == "X":
            raise Unsupported(f"candidate returned a non-plain value the replay cannot rebuild ({str(node[1])[:80]})")
        raise ValueError(f"malformed recording tag {tag!r}")

    # ---- classes -------------------------------------------------------------------------
    def trusted_class(self, desc: list) -> type | None:
        """The class itself when the trusted side has it: the prompt's or the tests' (same qualified
        name), a builtin, or one in a module the trusted side imported. None otherwise."""
        module, qualname = str(desc[0]), str(desc[1])
        if module == "__candidate__":
            cls = _walk(self.ns, qualname) or self.local.get(qualname)
        else:
            target = sys.modules.get(module)
            cls = _walk(vars(target), qualname) if target is not None else None
        return cls if isinstance(cls, type) else None

    def _standin_bases(self, desc: list, root: type) -> tuple:
        """Bases for a stand-in of the class `desc` names: its MRO up to the first trusted class that is
        a `root` (a builtin, or any trusted exception class), the classes in between as stand-ins too."""
        between = []
        for module, qualname in desc[2] if type(desc[2]) is list else ():
            cls = self.trusted_class([module, qualname])
            if isinstance(cls, type) and issubclass(cls, root) and (cls.__module__ == "builtins" or issubclass(cls, BaseException)):
                break
            if cls is None and module == "__candidate__" and issubclass(root, BaseException):
                between.append(str(qualname).rsplit(".", 1)[-1])
                continue
        else:
            cls, between = root, []
        bases = (cls,)
        for name in reversed(between):  # RangeError(ValidationError(ValueError)): the program's own hierarchy
            bases = (_standin(name, bases),)
        return bases

    def exception(self, node: list) -> BaseException:
        desc, args = node[1], self._dec(node[2])
        cls = self.trusted_class(desc)
        if not (isinstance(cls, type) and issubclass(cls, BaseException)):
            cls = _standin(str(desc[1]).rsplit(".", 1)[-1], self._standin_bases(desc, Exception))
        args = tuple(args) if type(args) is list else ()
        try:
            exc = cls(*args) if cls.__module__ == "builtins" else cls.__new__(cls, *args)
        except Exception:
            exc = cls.__new__(cls)
        exc.args = args
        self._set_state(exc, node[3])
        if len(node) > 4 and type(node[4]) is list and len(node[4]) == 3:
            cause, context = self._dec(node[4][0]), self._dec(node[4][1])
            exc.__cause__ = cause if isinstance(cause, BaseException) else None
            exc.__context__ = context if isinstance(context, BaseException) else None
            exc.__suppress_context__ = node[4][2] is True
        return exc

    def _set_state(self, obj: object, state) -> None:
        if type(state) is list:
            for k, v in state:
                if type(k) is str:
                    object.__setattr__(obj, k, self._dec(v)) if not isinstance(obj, BaseException) else setattr(obj, k, self._dec(v))

    def _numpy(self, node: list) -> object:
        numpy = sys.modules.get("numpy")  # imported by the prompt or the tests, else they cannot look
        if numpy is None:
            raise Unsupported("candidate returned a numpy value, and the tests do not import numpy")
        dtype = numpy.dtype(str(node[1]))
        if dtype.kind not in _NUMPY_KINDS:
            raise ValueError("malformed recording: numpy dtype")
        if node[0] == "np":
            value = self._dec(node[2])
            if type(value) not in (bool, int, float, complex):
                raise ValueError("malformed recording: numpy scalar")
            return dtype.type(value)
        i = self._slot(None)
        values = self._dec(node[3])
        shape = tuple(int(n) for n in node[2])
        if type(values) is not list or any(type(v) not in (bool, int, float, complex) for v in values):
            raise ValueError("malformed recording: numpy array")
        self.objs[i] = numpy.array(values, dtype=dtype).reshape(shape)
        return self.objs[i]

    def _enum(self, desc: list, name: str, value: object = None) -> object:
        cls = self.trusted_class(desc)
        if not isinstance(cls, enum.EnumMeta):
            members = (desc[3] or {}).get("enum") if type(desc[3]) is dict else None
            if type(members) is not list:
                raise ValueError("malformed recording: enum")
            base = next((b for b in (enum.IntFlag, enum.Flag, enum.IntEnum, enum.Enum) if
                         [b.__module__, b.__qualname__] in desc[2]), enum.Enum)
            key = ("enum", repr(desc))
            cls = _STANDINS.get(key)
            if cls is None:
                cls = _STANDINS[key] = base(str(desc[1]).rsplit(".", 1)[-1], [(str(k), self._dec(v)) for k, v in members])
        try:
            return cls[name]
        except KeyError:  # a combination of flags ("R|W") or a pseudo-member: by value, as the class itself would
            return cls(value)

    def _object(self, node: list) -> object:
        desc, base_node, state = node[1], node[2], node[3]
        i = self._slot(None)
        cls = self.trusted_class(desc)
        if cls is not None and not (str(desc[0]) == "__candidate__" or cls.__module__ in _PURE_MODULES
                                    or cls.__module__ == "types"):
            cls = None  # an arbitrary library class is not rebuilt from forged state in the trusted process
        base_value = self._dec(base_node) if base_node is not None else None
        if cls is None:
            cls = self._standin_class(desc, base_value)
        obj = self.objs[i] = _instance(cls, base_value)
        if type(state) is list and hasattr(obj, "__dict__"):
            self._set_state(obj, state)
        return obj

    def _standin_class(self, desc: list, base_value: object) -> type:
        """A class made here from the description alone: the candidate's methods never come along."""
        name = str(desc[1]).rsplit(".", 1)[-1]
        extra = desc[3] if type(desc[3]) is dict else {}
        key = ("class", repr(desc), type(base_value))
        cls = _STANDINS.get(key)
        if cls is not None:
            return cls
        if type(extra.get("fields")) is list and isinstance(base_value, tuple):
            cls = collections.namedtuple(name if name.isidentifier() else "Value",
                                         [str(f) for f in extra["fields"]], rename=True)
        elif type(extra.get("dataclass")) is list and base_value is None:
            import dataclasses

            cls = dataclasses.make_dataclass(name if name.isidentifier() else "Value",
                                             [str(f) for f in extra["dataclass"] if str(f).isidentifier()],
                                             eq=bool(extra.get("eq", True)), order=bool(extra.get("order")),
                                             frozen=bool(extra.get("frozen")), unsafe_hash=bool(extra.get("unsafe_hash")))
        elif base_value is not None:
            base = next((b for b in _BASES if type(base_value) is b), None)
            if base is None:
                raise ValueError("malformed recording: base value")
            cls = _standin(name, (base,))
        else:
            raise Unsupported(f"candidate returned a non-plain value ({str(desc[0])[:40]}.{str(desc[1])[:80]}): "
                              "only builtin and stdlib values, and classes the prompt or the tests define, are graded")
        _STANDINS[key] = cls
        _STANDIN_DESCS[cls] = desc
        return cls

    def _named(self, module: str, qualname: str) -> object:
        """A named class or function: the trusted side's own (prompt, tests), a builtin, or one of the
        stdlib's pure value modules (never an arbitrary function a test might then call)."""
        if module == "__candidate__":
            value = _walk(self.ns, str(qualname)) or self.local.get(str(qualname))
        elif module == "builtins":
            value = getattr(builtins, str(qualname), None) if str(qualname) not in _UNSAFE_BUILTINS else None
        elif module in _PURE_MODULES and module in sys.modules:
            value = _walk(vars(sys.modules[module]), str(qualname))
        else:
            value = self.trusted_class([module, qualname])
            value = value if value is not None and value.__module__ in sys.modules else None
            if value is not None and not (value.__module__ in _PURE_MODULES or issubclass(value, BaseException)):
                value = None
        if value is None:
            raise Unsupported(f"candidate returned {module}.{qualname}, which the replay does not rebuild")
        return value


_NUMPY_NAMES = frozenset({"ndarray", "bool_", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
                          "float16", "float32", "float64", "complex64", "complex128", "intc", "uintc",
                          "longlong", "ulonglong", "int_", "uint"})
_NUMPY_KINDS = frozenset("biufc")
_UNSAFE_BUILTINS = frozenset({"open", "exec", "eval", "compile", "__import__", "input", "breakpoint", "exit",
                              "quit", "help", "print", "setattr", "delattr", "globals", "locals", "vars"})
_PURE_MODULES = frozenset({"builtins", "math", "cmath", "operator", "string", "collections", "datetime", "decimal",
                           "fractions", "statistics", "heapq", "bisect", "itertools", "functools", "enum",
                           "numbers", "json", "json.decoder", "re", "typing"})
_STANDINS: dict = {}
_STANDIN_DESCS: dict = {}  # stand-in class -> the class description it was made from


def class_desc_of(obj: object) -> list | None:
    """The description of the program's class `obj` is an instance of, the same in both stages (a
    stand-in's recorded one; a `__candidate__` class's own), for isinstance against the program's classes."""
    t = type(obj)
    found = _STANDIN_DESCS.get(t)
    if found is None and getattr(t, "__module__", None) == "__candidate__":
        found = Encoder()._classdesc(t)
    return found


def _instance(cls: type, base_value: object) -> object:
    """A bare instance of `cls` (no __init__), holding `base_value` when it extends a builtin value type."""
    if base_value is None:
        try:
            return cls.__new__(cls)
        except Exception:
            return object.__new__(cls)
    for base in _BASES:
        if isinstance(base_value, base) and issubclass(cls, base):
            if base in (list, dict, set):
                obj = base.__new__(cls)
                (list.extend if base is list else dict.update if base is dict else set.update)(obj, base_value)
                return obj
            return base.__new__(cls, base_value)
    raise ValueError("malformed recording: base value")


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


def _walk(namespace: dict, qualname: str) -> object:
    value: object = namespace
    for part in str(qualname).split("."):
        value = value.get(part) if type(value) is dict else vars(value).get(part) if isinstance(value, type) else None
        if value is None:
            return None
    return value


def _standin(name: str, bases: tuple) -> type:
    key = ("standin", name, bases)
    cls = _STANDINS.get(key)
    if cls is None:
        safe = "".join(c if c.isalnum() or c == "_" else "_" for c in name)[:80] or "Value"
        cls = _STANDINS[key] = type(safe, bases, {"__module__": "__candidate__", "__doc__": "stand-in built by the replay"})
    return cls


def encode(value: object) -> object:
    """Plain-data, JSON-serialisable form of `value` (a fresh numbering)."""
    return Encoder().encode(value)


def decode(node: object, ns: dict | None = None) -> object:
    """Inverse of `encode`, run in the trusted process on JSON the child produced (may be forged)."""
    return Decoder([], ns or {}).decode(node)
