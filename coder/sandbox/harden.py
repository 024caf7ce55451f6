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
