"""Compatible verdicts: what a child does before the program runs when its own pass may count.

The replay cannot rebuild some honest answers (a library's object). For those, `--verdicts compatible`
takes the child's own outcome, which it reports with a secret token from the job, written only after
the tests passed and only if every such answer was of a class that existed before the program ran
(the stdlib's, a library's; never one the program made). To keep the token and the test machinery out
of the program's reach, the child first blocks, with an audit hook, what reads other frames or
objects (sys._getframe, traceback and generator frames, gc's object lists, settrace/setprofile, code
and __class__ rewriting, new audit hooks) and drops ctypes. Python offers no complete in-process
isolation (docs/coder.md says what this does not stop); strict verdicts never rely on it.
"""
from __future__ import annotations

import gc
import importlib
import sys
import types

_TRUSTED: frozenset[int] = frozenset()
_CTYPES_REFS: list[tuple[str, str]] = []


def _classes(modules) -> set[int]:
    found = set()
    for module in modules:
        for value in list(vars(module).values()) if isinstance(module, types.ModuleType) else ():
            if isinstance(value, type):
                found.add(id(value))
    return found


def _ctypes_like(value: object) -> bool:
    t = value if isinstance(value, types.ModuleType) else type(value)
    name = getattr(t, "__name__", "") if isinstance(value, types.ModuleType) else getattr(t, "__module__", "")
    return isinstance(name, str) and name.split(".")[0] in ("ctypes", "_ctypes", "pyseccomp")


def snapshot_trusted_types() -> None:
    """In the zygote: the classes of every module imported so far, and where ctypes is referenced."""
    global _TRUSTED
    _TRUSTED = frozenset(_classes(list(sys.modules.values())))
    _CTYPES_REFS[:] = [(name, key) for name, module in list(sys.modules.items()) if isinstance(module, types.ModuleType)
                       for key, value in list(vars(module).items()) if _ctypes_like(value)]


def _audit(event, args):
    # Only constants and operators here: the program may rebind globals and builtins.
    if event == "sys._getframe":
        raise ValueError("frames are not available in the sandbox")  # what stdlib callers expect
    if event in {"sys._current_frames", "sys.settrace", "sys.setprofile", "gc.get_objects", "gc.get_referrers",
                 "gc.get_referents", "sys.addaudithook", "code.__new__", "function.__new__", "ctypes.dlopen",
                 "ctypes.dlsym", "ctypes.dlsym/handle", "ctypes.cdata", "ctypes.cdata/buffer", "ctypes.addressof",
                 "ctypes.string_at", "ctypes.wstring_at", "ctypes.call_function", "cpython.PyInterpreterState_Clear"}:
        raise PermissionError(f"{event} is not available in the sandbox")
    if event == "object.__getattr__" and args[1] in {"tb_frame", "gi_frame", "cr_frame", "ag_frame", "f_back"}:
        raise PermissionError("frames are not available in the sandbox")
    if event == "object.__setattr__" and args[1] in {"__code__", "__class__", "__defaults__", "__kwdefaults__"}:
        raise PermissionError(f"setting {args[1]} is not available in the sandbox")
    if event == "import" and args[0].split(".")[0] in {"ctypes", "_ctypes", "pyseccomp"}:
        raise PermissionError("ctypes is not available in the sandbox")


def _thread_count(_count=__import__("_thread")._count) -> int:
    return _count()


def _handlers(_get=__import__("signal").getsignal, _signals=tuple(range(1, 32))) -> tuple:
    """The signal handlers now: one the program sets could run its code between two checks."""
    out = []
    for n in _signals:
        try:
            out.append(_get(n))
        except (ValueError, OSError):
            out.append(None)
    return tuple(out)


_MUTABLE_MODULES = frozenset({"sys", "builtins", "warnings", "__main__", "__candidate__", "traceback"})


def watch(_modules=sys.modules, _items=dict.items, _get=dict.get, _id=id, _len=len, _gc=gc.callbacks,
          _proxy=type.__dict__["__dict__"].__get__, _isinstance=isinstance, _type=type, _fn=types.FunctionType):
    """Before the program runs: a check that later says whether the library code the tests compare with
    is still what it was. False when a module's function or class was rebound or removed, a class's
    attributes were added, changed or removed (`DataFrame.equals = ...`), or a gc callback was added.
    Its state lives in this closure and its tools in defaults the program cannot rebind."""
    modules, classes, seen = [], [], set()
    for name, module in list(_modules.items()):
        if not _isinstance(module, types.ModuleType) or name in _MUTABLE_MODULES:
            continue
        d = vars(module)
        kept = {k: _id(v) for k, v in list(d.items()) if _isinstance(v, (type, _fn, types.BuiltinFunctionType))}
        modules.append((name, module, d, kept))
        for v in list(d.values()):
            if _isinstance(v, type) and _id(v) not in seen:
                seen.add(_id(v))
                classes.append((v, {k: _id(a) for k, a in list(_proxy(v).items())}))

    touched = [False]  # sticky: a patch undone later (by the patched method itself) still counts
    threads = _thread_count()
    handlers = _handlers()

    def untouched() -> bool:
        if not touched[0] and not _clean():
            touched[0] = True
        return not touched[0]

    def _clean() -> bool:
        if _len(_gc) or _thread_count() != threads or _handlers() != handlers:
            return False
        for name, module, d, kept in modules:
            if _get(_modules, name) is not module:
                return False
            for k, i in _items(kept):
                if _id(_get(d, k)) != i:
                    return False
        for cls, kept in classes:
            now = _proxy(cls)
            if _len(now) != _len(kept):
                return False
            for k, v in now.items():
                if _get(kept, k) != _id(v):
                    return False
        return True

    return untouched


def lock_down(test_imports=()) -> frozenset[int]:
    """In the child, before the program: returns the ids of trusted classes (the zygote's and those of
    the modules the tests import, imported now), then closes the doors listed above."""
    known = set(sys.modules)
    for name in test_imports:
        try:
            importlib.import_module(name)
        except Exception:
            pass
    new = [m for n, m in list(sys.modules.items()) if n not in known]
    trusted = _TRUSTED | _classes(new) if new else _TRUSTED
    for name, key in _CTYPES_REFS:
        module = sys.modules.get(name)
        if module is not None:
            vars(module).pop(key, None)
    for name in [n for n in sys.modules if n.split(".")[0] in ("ctypes", "_ctypes", "pyseccomp")]:
        del sys.modules[name]
    import traceback

    traceback.clear_frames = lambda tb: None  # unittest's assertRaises calls it; it only frees memory
    sys.addaudithook(_audit)
    return trusted
