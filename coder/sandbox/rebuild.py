"""The trusted half of `coder.sandbox.plain`: rebuilding encoded values in stage 2.

Only trusted things are built: builtin and stdlib values, classes the trusted side defines (the prompt,
the tests), and stand-ins made from a plain description (a candidate's exception, enum, namedtuple,
dataclass or str/int subclass keeps its name, bases and data, never its methods).
"""
from __future__ import annotations

import builtins
import collections
import enum
import math
import sys

from coder.sandbox import frames
from coder.sandbox.handles import HandleType
from coder.sandbox.plain import (_BASES, _BUILD, _DEEP, _NUMPY_KINDS, _VALUE_TYPES, Encoder, Unsupported,
                                 assign)

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
        # The tests' stand-in for a class of the program they name is no class to rebuild a value into.
        return cls if isinstance(cls, type) and not isinstance(cls, HandleType) else None

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
                # The described module and qualified name (the functional API would name this module): the
                # tests passing a member back as an argument encode it as stage 1 did the candidate's.
                members = [(str(k), self._dec(v)) for k, v in members]
                cls = _STANDINS[key] = base(str(desc[1]).rsplit(".", 1)[-1], members, module=str(desc[0]),
                                            qualname=str(desc[1]))
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
        cls = None
        if type(extra.get("fields")) is list and isinstance(base_value, tuple):
            cls = collections.namedtuple(name if name.isidentifier() else "Value",
                                         [str(f) for f in extra["fields"]], rename=True)
        elif type(extra.get("dataclass")) is list and base_value is None:
            import dataclasses

            cls = dataclasses.make_dataclass(name if name.isidentifier() else "Value",
                                             [str(f) for f in extra["dataclass"] if str(f).isidentifier()],
                                             eq=bool(extra.get("eq", True)), order=bool(extra.get("order")),
                                             frozen=bool(extra.get("frozen")), unsafe_hash=bool(extra.get("unsafe_hash")))
        if cls is not None:  # named as described (not after this module): the tests passing one back as an
            cls.__module__, cls.__qualname__ = str(desc[0]), str(desc[1])  # argument encode it as stage 1 did
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

