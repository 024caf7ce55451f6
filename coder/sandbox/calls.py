"""Calls into the candidate: recorded in the untrusted child (`Recording`), answered in the trusted replay (`Replaying`).

One JSON entry per call (or per item a returned generator yields), in call order:
  {"name", "ah": hash of the encoded arguments, "ev": [events during the call], "out" | "raise", "post"}
Events are what the candidate did that the tests can see besides the answer: calls to callbacks the
tests passed (["cb", number of the callback, args, kwargs]), text written to a stdout the tests
redirected (["out", text]), warnings (["warn", message, category, filename, lineno]). "post" is the
new contents of every argument container, present only when the call changed one. Untrusted
callables and iterators in an answer become handles ("#N"), whose calls are entries of their own.
"""
from __future__ import annotations

import json
import os
import random
import sys
import warnings

from coder.sandbox.plain import _DEEP, Decoder, Encoder

_DETAIL_CHARS = 300


def _not_plain(value: object) -> object:
    raise TypeError(f"not plain data: {type(value).__name__}")


try:  # json's C encoder, built once (in the zygote): json.dumps builds one per call.
    from json.encoder import c_make_encoder as _make_encoder, encode_basestring_ascii as _ascii

    _ENCODER = _make_encoder(None, _not_plain, _ascii, None, ":", ",", False, False, True)
except (ImportError, TypeError):
    _ENCODER = None


def json_text(obj: object) -> str:
    limit = sys.getrecursionlimit()
    if limit < _DEEP:  # deeply nested answers: json's C encoder counts its recursion too
        sys.setrecursionlimit(_DEEP)
    try:
        return "".join(_ENCODER(obj, 0)) if _ENCODER is not None else json.dumps(obj, separators=(",", ":"))
    finally:
        if limit < _DEEP:
            sys.setrecursionlimit(limit)


def short(exc: BaseException) -> str:
    try:
        message = str(exc)
    except Exception:
        message = ""
    text = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    return text if len(text) <= _DETAIL_CHARS else text[: _DETAIL_CHARS - 3] + "..."


def _is_callback(x: object) -> bool:
    """A callable the tests passed whose calls may have effects the tests look at (not a class, not a
    module-level builtin such as `len`)."""
    if isinstance(x, type) or not callable(x):
        return False
    return not (type(x) is type(len) and (x.__self__ is None or type(x.__self__) is type(sys)))


def _arguments(args: tuple, kwargs: dict, shared: dict | None) -> list:
    return [list(args), kwargs] if shared is None else [list(args), kwargs, shared]


def contents(enc: Encoder, obj: object):
    """The current contents of a numbered argument container, for "post" (None: immutable)."""
    t = type(obj)
    if t is list:
        return ["l", [enc._enc(v) for v in list.__iter__(obj)]]
    if isinstance(obj, dict) and t.__module__ in ("builtins", "collections"):
        return ["d", [[enc._enc(k), enc._enc(v)] for k, v in dict.items(obj)]]
    if t is set:
        return ["s", [enc._enc(v) for v in set.__iter__(obj)]]
    if t is bytearray:
        return ["ba", bytearray.hex(obj)]
    if t.__name__ == "deque" and t.__module__ == "collections":
        return ["q", [enc._enc(v) for v in obj]]
    state = enc._state(obj) if not isinstance(obj, (tuple, frozenset, str, bytes, int, float)) else None
    return ["a", state] if state is not None else None


class _Tee:
    """sys.stdout during a call when the tests redirected it: writes go on and are recorded."""

    def __init__(self, target, events: list):
        self.target, self.events = target, events

    def write(self, text):
        self.events.append(["out", str(text)])
        return self.target.write(text)

    def __getattr__(self, name):
        return getattr(self.target, name)


class Recording:
    """Stage 1's side of every call: runs the candidate and appends its entry to the recording `fd`."""

    def __init__(self, fd: int, ns: dict, test_ns: dict, shared: list[str], guard_random: bool,
                 capture_stdout: bool, capture_warnings: bool):
        self.fd, self.ns, self.test_ns, self.shared = fd, ns, test_ns, shared
        self.guard_random, self.capture_stdout, self.capture_warnings = guard_random, capture_stdout, capture_warnings
        self.real_stdout = sys.stdout
        self.handles = 0
        self.foreign: set[type] = set()
        self.write = os.write

    def recorder(self, name: str, fn):
        def candidate(*args, **kwargs):
            return self.call(name, fn, args, kwargs)

        candidate.__name__ = candidate.__qualname__ = getattr(fn, "__name__", name)
        candidate.__doc__ = getattr(fn, "__doc__", None)
        return candidate

    def call(self, name: str, fn, args: tuple, kwargs: dict):
        enc = Encoder(live=True, first_handle=self.handles)
        shared = {n: self.ns.get(n) for n in self.shared} if self.shared else None
        pre = json_text(enc.encode(_arguments(args, kwargs, shared), args=True))
        numbered = list(enc.objs)
        entry: dict = {"name": name, "ah": hash(pre)}
        events: list = []
        given = (args, kwargs, shared)
        args, kwargs = self._wrap_callbacks(enc, events, args, kwargs)
        state = random.getstate() if self.guard_random else None
        try:
            result = self._invoke(fn, args, kwargs, events)
        except BaseException as exc:
            entry["raise"] = enc.encode(exc)
            entry["detail"] = short(exc)
            self._finish(enc, entry, events, pre, numbered, given)
            raise
        finally:
            if state is not None:
                random.setstate(state)
        entry["out"] = enc.encode(result)
        self._finish(enc, entry, events, pre, numbered, given)
        self.handles = enc.next_handle
        return self._live(enc, result) if enc.handles else result

    def _invoke(self, fn, args: tuple, kwargs: dict, events: list):
        tee = None
        if self.capture_stdout and sys.stdout is not self.real_stdout:
            tee = sys.stdout = _Tee(sys.stdout, events)
        try:
            if not self.capture_warnings:
                return fn(*args, **kwargs)
            caught: list = []
            try:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    return fn(*args, **kwargs)
            finally:
                self._warned(caught, events)
        finally:
            if tee is not None and sys.stdout is tee:
                sys.stdout = tee.target

    def _warned(self, caught: list, events: list) -> None:
        enc = Encoder()
        for w in caught:
            events.append(["warn", str(w.message), enc._classdesc(w.category), str(w.filename), int(w.lineno or 0)])
        for w in caught:  # again, outside the recording context: the tests' own filters and records see them
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)

    def _wrap_callbacks(self, enc: Encoder, events: list, args: tuple, kwargs: dict):
        if not any(map(_is_callback, args)) and not any(map(_is_callback, kwargs.values())):
            return args, kwargs

        def wrap(value):
            if not _is_callback(value) or id(value) not in enc.memo:
                return value
            number = enc.memo[id(value)]

            def callback(*a, **k):
                events.append(["cb", number, enc.encode(list(a)), enc.encode(k)])
                return value(*a, **k)

            return callback

        return tuple(map(wrap, args)), {k: wrap(v) for k, v in kwargs.items()}

    def _finish(self, enc: Encoder, entry: dict, events: list, pre: str, numbered: list, given: tuple) -> None:
        if events:
            entry["ev"] = events
        args, kwargs, shared = given
        if shared is not None:
            for n in self.shared:  # the tests see what the call rebound, as they would in one module
                shared[n] = self.test_ns[n] = self.ns.get(n)
        if json_text(Encoder().encode(_arguments(args, kwargs, shared), args=True)) != pre:
            entry["post"] = [contents(enc, obj) for obj in numbered]
        self.foreign.update(enc.foreign)
        self.write(self.fd, (json_text(entry) + "\n").encode())

    def _live(self, enc: Encoder, result):
        """The answer as the tests see it in stage 1: handles replaced by recording stand-ins."""
        live = {id(obj): self._handle(n, kind, obj) for n, kind, obj in enc.handles}
        if id(result) in live:
            return live[id(result)]
        if type(result) is list:
            result[:] = [live.get(id(v), v) for v in result]
        elif type(result) is tuple:
            result = tuple(live.get(id(v), v) for v in result)
        elif type(result) is dict:
            for k, v in list(result.items()):
                result[k] = live.get(id(v), v)
        return result

    def _handle(self, n: int, kind: str, obj):
        name = f"#{n}"
        if kind == "h":
            return self.recorder(name, obj)
        return self._iterate(name, iter(obj))

    def _iterate(self, name: str, it):
        while True:
            try:
                value = self.call(name, lambda: next(it), (), {})
            except StopIteration:
                return
            yield value


class ReplayMismatch(Exception):
    pass


class Replaying:
    """Stage 2's side: checks each call against the recording and answers from it."""

    def __init__(self, records: list[dict], ns: dict, shared: list[str]):
        self.records, self.ns, self.shared = records, ns, shared
        self.cursor = 0

    def replay(self, name: str):
        def candidate(*args, **kwargs):
            return self.call(name, args, kwargs)

        candidate.__name__ = candidate.__qualname__ = name
        return candidate

    def call(self, name: str, args: tuple, kwargs: dict):
        i = self.cursor
        if i >= len(self.records):
            raise ReplayMismatch(f"the candidate stopped answering after {i} call(s)")
        rec = self.records[i]
        self.cursor = i + 1
        enc = Encoder()
        shared = {n: self.ns.get(n) for n in self.shared} if self.shared else None
        text = json_text(enc.encode(_arguments(args, kwargs, shared), args=True))
        if rec.get("name") != name or rec.get("ah") != hash(text):
            raise ReplayMismatch(f"call {i + 1} to {name} differs from the recorded run")
        numbered = list(enc.objs)
        dec = Decoder(enc.objs, self.ns, self._handle)
        for event in rec.get("ev") or ():
            self._event(dec, event)
        if "raise" in rec:
            exc = dec.decode(rec["raise"])
            if not isinstance(exc, BaseException):
                raise ValueError("malformed recording: raise")
            self._post(dec, rec, numbered, shared)
            try:
                exc.proofcode_candidate = str(rec.get("detail", ""))[:_DETAIL_CHARS] or short(exc)
            except (AttributeError, TypeError):
                pass
            raise exc
        result = dec.decode(rec["out"])
        self._post(dec, rec, numbered, shared)
        return result

    def _event(self, dec: Decoder, event: list) -> None:
        kind = event[0]
        if kind == "cb":
            fn = dec.objs[int(event[1])]
            args, kwargs = dec.decode(event[2]), dec.decode(event[3])
            try:  # the tests' own callback, called as the candidate called it: its effects happen here too
                fn(*args, **kwargs)
            except Exception:
                pass
        elif kind == "out":
            sys.stdout.write(str(event[1]))
        elif kind == "warn":
            category = dec.trusted_class(event[2])
            if not (isinstance(category, type) and issubclass(category, Warning)):
                from coder.sandbox.plain import _standin

                category = _standin(str(event[2][1]).rsplit(".", 1)[-1], dec._standin_bases(event[2], UserWarning))
            warnings.warn_explicit(str(event[1]), category, str(event[3]), int(event[4]))

    def _post(self, dec: Decoder, rec: dict, numbered: list, shared: dict | None) -> None:
        post = rec.get("post")
        if not post:
            return
        if len(post) != len(numbered):
            raise ReplayMismatch("the recorded arguments do not match the tests' arguments")
        new = [None if not node else [[k, dec.decode(v)] for k, v in node[1] or ()] if node[0] == "a"
               else dec.decode(node) for node in post]
        for target, node, value in zip(numbered, post, new):
            if node:
                _assign(target, node[0], value)
        if shared is not None:
            for n in self.shared:
                if n in shared:
                    self.ns[n] = shared[n]

    def _handle(self, kind: str, n: int):
        name = f"#{n}"
        return self.replay(name) if kind == "h" else self._iterate(name)

    def _iterate(self, name: str):
        while True:
            try:
                value = self.call(name, (), {})
            except StopIteration:
                return
            yield value


def _assign(target: object, kind: str, value: object) -> None:
    """Give the tests' own object the contents the candidate left in stage 1's copy."""
    if kind == "l" and type(target) is list:
        target[:] = value
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
    elif kind == "a" and type(value) is list and hasattr(target, "__dict__"):
        target.__dict__.clear()
        for k, v in value:
            target.__dict__[k] = v
    elif kind in ("l", "d", "s", "ba", "q", "a"):
        raise ReplayMismatch("the recorded arguments do not match the tests' arguments")
