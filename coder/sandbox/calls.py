"""Calls into the candidate: recorded in the untrusted child (`Recording`), answered in the trusted replay (`Replaying`).

One JSON entry per call (or per item a returned generator yields), in call order:
  {"name", "ah": hash of the encoded arguments, "ev": [events during the call], "out" | "raise", "post"}
Events are what the candidate did that the tests can see besides the answer: calls to callbacks the
tests passed (["cb", number of the callback, args, kwargs]), text written to a stdout the tests
redirected (["out", text]), warnings (["warn", message, category, filename, lineno]). "post" is the
new contents of every argument container, present only when the call changed one; "late" the new
contents of containers an earlier call took or answered that this call changed (the program kept them:
an internal list it returned, a list its generator consumes), as [index among the session's numbered
objects, contents]. Untrusted
callables and iterators in an answer become handles ("#N"), whose calls are entries of their own.
"""
from __future__ import annotations

import json
import os
import random
import sys
import warnings

from coder.sandbox import handles
from coder.sandbox.handles import Handle
from coder.sandbox.held import Held
from coder.sandbox.plain import _DEEP, _ITERATORS, ContentsMismatch, Encoder, assign, contents
from coder.sandbox.rebuild import Decoder, _standin, class_desc_of

_DETAIL_CHARS = 300
GLOBALS = "#globals"  # the call that answers the program's module-level values the tests read


def _unshared_count() -> int:
    result = list()  # noqa: C408 (a new object, as a call's answer is)
    return sys.getrefcount(result)


_UNSHARED = _unshared_count()  # sys.getrefcount of a value only a local variable refers to, here (2 on 3.11)


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


def _is_active(x: object) -> bool:
    return isinstance(x, _ITERATORS) or _is_callback(x)


_SCALARS = (type(None), bool, int, float, str)


def _outcome(enc: Encoder, event: list, fn, args: tuple, kwargs: dict):
    """Call one of the tests' callables for the candidate; what it returns or raises is numbered (the
    event says so), so that an answer holding it is, in the replay, the tests' own object again."""
    try:
        out = fn(*args, **kwargs)
    except BaseException as exc:
        if id(exc) not in enc.memo:
            enc._number(exc)
            event.append(1)
        raise
    if type(out) not in _SCALARS and id(out) not in enc.memo:
        enc._number(out)
        event.append(1)
    return out


class _Pull:
    """An iterator the tests passed, as the candidate sees it: every item taken is an event."""

    def __init__(self, it, number: int, enc: Encoder, events: list):
        self.it, self.number, self.enc, self.events = it, number, enc, events

    def __iter__(self):
        return self

    def __next__(self):
        event = ["nx", self.number]
        self.events.append(event)
        return _outcome(self.enc, event, next, (self.it,), {})


def _random_after(entry: dict, before) -> None:
    """The candidate's use of `random` moves the tests' stream as in one process: the state it leaves
    is recorded and set in the replay."""
    if before is not None:
        after = random.getstate()
        if after != before:
            entry["rs"] = [after[0], list(after[1]), after[2]]


class Answered:
    """Objects earlier calls answered, numbered in the same order in both stages (`["R", n]`): a memoized
    answer or a mutable default is the same object when answered again. Kept alive, so ids stay theirs."""

    def __init__(self):
        self.ids: dict[int, int] = {}
        self.objs: list = []

    def add(self, objs: list, start: int) -> None:
        for obj in objs[start:]:
            if id(obj) not in self.ids:
                self.ids[id(obj)] = len(self.objs)
                self.objs.append(obj)


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
                 capture_stdout: bool, capture_warnings: bool, trusted: frozenset = frozenset()):
        self.fd, self.ns, self.test_ns, self.shared, self.trusted = fd, ns, test_ns, shared, trusted
        self.objects: dict[int, int] = {}  # the candidate's objects behind handles: id -> number
        self.class_numbers: dict[int, int] = {}  # their classes: id -> number (see handles.handle_class)
        self.handle_classes: dict = {}  # see handles.handle_class
        self.entry_names: dict[int, str] = {}  # id -> name of the program's classes the tests name
        self.kept: dict[int, object] = {}  # number -> object (kept alive, so ids stay theirs)
        self.proxies: dict[int, Handle] = {}
        self.guard_random, self.capture_stdout, self.capture_warnings = guard_random, capture_stdout, capture_warnings
        self.real_stdout = sys.stdout
        self.handles = 0
        self.foreign: set[type] = set()
        self.write = os.write
        self.answered = Answered()
        self.held = Held()
        self.views: dict[int, tuple] = {}  # see _replace
        self.check = None

    def watch(self, check) -> None:
        """Compatible verdicts: after every call, the integrity check of harden.watch (sticky)."""
        self.check = check

    def recorder(self, name: str, fn):
        def candidate(*args, **kwargs):
            return self.call(name, fn, args, kwargs)

        candidate.__name__ = candidate.__qualname__ = getattr(fn, "__name__", name)
        candidate.__doc__ = getattr(fn, "__doc__", None)
        return candidate

    def program_globals(self, names: list[str]) -> list[str]:
        """One recorded call answering the program's module-level values the tests read (`GLOBALS`); returns
        the names among them that are classes of the program's, which the tests then get as named classes."""
        classes = [n for n in names if isinstance(self.ns.get(n), type) and self.ns[n].__module__ == "__candidate__"]
        values = {n: self.ns[n] for n in names if n in self.ns and n not in classes
                  and not isinstance(self.ns[n], type(sys))}  # a module is no value (the stdlib's are imported)
        answer = self.call(GLOBALS, lambda: {"values": values, "classes": classes}, (), {})
        self.test_ns.update(answer["values"])  # as the answer reaches the tests: a function is recorded
        return classes

    def class_recorder(self, name: str, cls: type) -> type:
        """The program's class `name` as the tests see it: constructing one is a recorded call."""
        self.entry_names[id(cls)] = name
        return handles.entry_class(name, lambda *a, **k: self.call(name, cls, a, k),
                                   lambda attr: self.call(f"{name}.{attr}", lambda: getattr(cls, attr), (), {}),
                                   class_desc_of, self.handle_classes)

    def call(self, name: str, fn, args: tuple, kwargs: dict):
        try:
            return self._call(name, fn, args, kwargs)
        finally:
            if self.check is not None:
                self.check()

    def _call(self, name: str, fn, args: tuple, kwargs: dict):
        enc = Encoder(live=True, first_handle=self.handles, known=self.answered.ids, objects=self.objects,
                      trusted=self.trusted, class_numbers=self.class_numbers, entry_names=self.entry_names)
        shared = {n: self.ns.get(n) for n in self.shared} if self.shared else None
        pre = json_text(enc.encode(_arguments(args, kwargs, shared), args=True))
        numbered = list(enc.objs)
        entry: dict = {"name": name, "ah": hash(pre)}
        events: list = []
        given = (args, kwargs, shared)
        if self.kept:  # candidate code gets its own objects, never the tests' handles
            args, kwargs = handles.unwrap(args, self._real), handles.unwrap(kwargs, self._real)
        args, kwargs = self._wrap_arguments(enc, events, args, kwargs)
        state = random.getstate() if self.guard_random else None
        try:
            result = self._invoke(fn, args, kwargs, events)
            # An answer only this frame refers to is the tests' alone: no later call can change it.
            shared_answer = sys.getrefcount(result) > _UNSHARED
        except BaseException as exc:
            _random_after(entry, state)
            entry["raise"] = enc.encode(exc)
            entry["detail"] = short(exc)
            self._finish(enc, entry, events, pre, numbered, given)
            self.held.add(enc, self._kept_arguments(name, fn, enc, given))
            raise
        _random_after(entry, state)
        entry["out"] = enc.encode(result)
        self._finish(enc, entry, events, pre, numbered, given)
        # Only now: putting the tests' handles in the answer (hashing them into a set is a call) is no change
        # of the program's, and the replay numbers what those calls answered first as well.
        own = frozenset(map(id, numbered))
        live = self._live(enc, result, own) if enc.handles else result
        if entry.get("late") and self.views:
            self._refresh_views(entry["late"])
        watch = ((result, *result["values"].values()) if name == GLOBALS  # each global changes alone
                 else (result,) if shared_answer else ())
        self.held.add(enc, (*self._kept_arguments(name, fn, enc, given), *watch))
        return live

    @staticmethod
    def _kept_arguments(name: str, fn, enc: Encoder, given: tuple) -> tuple:
        """The call's arguments when the program may have kept them for later: it answered something live
        (a generator, a closure, its own object), or the call is a method of its object or builds one."""
        if enc.handles or name.startswith("#") or isinstance(fn, type):
            return (*given[0], *given[1].values())
        return ()

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

    def _wrap_arguments(self, enc: Encoder, events: list, args: tuple, kwargs: dict):
        """The tests' callbacks and iterators, as the candidate gets them: each call or item it takes is an
        event, so the replay calls the tests' own callback or advances their own iterator the same way."""
        if not any(map(_is_active, args)) and not any(map(_is_active, kwargs.values())):
            return args, kwargs

        def wrap(value):
            number = enc.memo.get(id(value)) if _is_active(value) else None
            if number is None:
                return value
            if isinstance(value, _ITERATORS):
                return _Pull(value, number, enc, events)

            def callback(*a, **k):
                event = ["cb", number, enc.encode(list(a)), enc.encode(k)]
                events.append(event)
                return _outcome(enc, event, value, a, k)

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
        late = self.held.changes(enc)
        if late:
            entry["late"] = late
        self.answered.add(enc.objs, len(numbered))
        self.foreign.update(enc.foreign)
        self.handles = enc.next_handle
        self.write(self.fd, (json_text(entry) + "\n").encode())

    def _real(self, handle: Handle) -> object:
        return self.kept.get(handles.number(handle), handle)

    def _live(self, enc: Encoder, result, own: frozenset):
        """The answer as the tests see it in stage 1: handles replaced by recording stand-ins."""
        live = {id(obj): self._handle(n, kind, obj, enc.handle_descs.get(n)) for n, kind, obj in enc.handles}
        return _replace(result, live, {}, self.views, own)

    def _refresh_views(self, changed: list) -> None:
        """The tests' copies of the candidate's containers a call changed (its "late" changes), again."""
        known = None
        for i, _ in changed:
            view = self.views.get(id(self.held.objs[i]))
            if view is not None:
                if known is None:
                    known = {id(self.kept[n]): proxy for n, proxy in self.proxies.items() if n in self.kept}
                _replace(view[0], known, {}, self.views)

    def _handle(self, n: int, kind: str, obj, cls_desc: list | None = None):
        name = f"#{n}"
        if kind == "h":
            return self.recorder(name, obj)
        if kind in ("ho", "p"):
            proxy = self.proxies.get(n)
            if proxy is None:
                self.kept[n] = obj
                def use(op, *a, **k):
                    answer = self.call(name, lambda *b, **c: handles.perform(obj, *b, **c), (op, *a), k)
                    return answer[0] if op in ("eq", "order") else answer  # the rest is the replay's evidence

                proxy = self.proxies[n] = handles.make(use, n, cls_desc or Encoder()._classdesc(type(obj)),
                                                       self.handle_classes)
            return proxy
        return self._iterate(name, iter(obj))

    def _iterate(self, name: str, it):
        """The tests' side of an iterator the candidate answered: each item is a recorded call, and a
        generator's `send(value)` and `throw(exc)` reach it as they would (the value sent or the exception
        thrown is the call's argument)."""
        args: tuple = ()
        while True:
            step = (lambda: next(it)) if not args else (lambda e: it.throw(e)) if isinstance(args[0], BaseException) \
                else (lambda v: it.send(v))
            try:
                value = self.call(name, step, args, {})
            except StopIteration:
                return
            args = yield from _resumed(value)


def _resumed(value):
    """Yield `value` to the tests; what they did next: () for next(), (value,) for send, (exc,) for throw."""
    try:
        sent = yield value
    except GeneratorExit:
        raise
    except BaseException as exc:  # thrown in by the tests
        return (exc,)
    return () if sent is None else (sent,)


def _replace(value, live: dict, memo: dict, views: dict | None = None, own: frozenset = frozenset()):
    """`value` with the objects behind handles replaced by their stand-ins, at any depth of plain containers.
    The tests' own containers (`own`: ids) are changed in place; the candidate's are not (its code would
    meet the tests' handles in them): the tests get a copy, the same one each time (`views`: id ->
    (container, copy))."""
    got = live.get(id(value))
    if got is not None:
        return got
    t = type(value)
    if t not in (list, tuple, dict, set):
        return value
    if id(value) in memo:
        return memo[id(value)]
    if t is tuple:
        return tuple(_replace(v, live, memo, views, own) for v in value)
    view = views.get(id(value)) if views is not None and id(value) not in own else None
    target = value if views is None or id(value) in own else view[1] if view is not None else t()
    memo[id(value)] = target
    if t is dict:
        items = [(k, _replace(v, live, memo, views, own)) for k, v in list(value.items())]
        changed = target is not value or any(v is not value.get(k) for k, v in items)
    else:
        items = [_replace(v, live, memo, views, own) for v in list(value)]
        changed = target is not value or any(a is not b for a, b in zip(items, value))
    if not changed:
        return value
    if target is not value and view is None:
        if not any(a is not b for a, b in zip(items if t is not dict else [v for _, v in items],
                                             value if t is not dict else value.values())):
            memo[id(value)] = value  # nothing of the candidate's to hide: the tests share its container
            return value
        views[id(value)] = (value, target)
    if t is list:
        target[:] = items
    else:
        target.clear()
        target.update(items)
    return target


class ReplayMismatch(Exception):
    pass


class Replaying:
    """Stage 2's side: checks each call against the recording and answers from it."""

    def __init__(self, records: list[dict], ns: dict, shared: list[str]):
        self.records, self.ns, self.shared = records, ns, shared
        self.cursor = 0
        self.answered = Answered()
        self.held: list = []  # what stage 1's Held.objs holds, for its "late" changes
        self.proxies: dict[int, Handle] = {}
        self.handle_classes: dict = {}  # see handles.handle_class
        self.local: dict[str, type] = {}  # the tests' own classes met in arguments (check.<locals>.Tag)

    def class_replay(self, name: str) -> type:
        """The program's class `name` in the replay: constructing one replays the recorded call."""
        return handles.entry_class(name, lambda *a, **k: self.call(name, a, k),
                                   lambda attr: self.call(f"{name}.{attr}", (), {}), class_desc_of, self.handle_classes)

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
        self.local.update(enc.classes)
        dec = Decoder(enc.objs, self.ns, self._handle, self.answered.objs, self.local)
        for event in rec.get("ev") or ():
            self._event(dec, event)
        if "rs" in rec:
            state = rec["rs"]
            random.setstate((int(state[0]), tuple(int(v) for v in state[1]), state[2]))
        if "raise" in rec:
            exc = dec.decode(rec["raise"])
            if not isinstance(exc, BaseException):
                raise ValueError("malformed recording: raise")
            self._post(dec, rec, numbered, shared)
            self._late(dec, rec)
            self.answered.add(dec.objs, len(numbered))
            self.held.extend(dec.objs)
            try:
                exc.proofcode_candidate = str(rec.get("detail", ""))[:_DETAIL_CHARS] or short(exc)
            except (AttributeError, TypeError):
                pass
            raise exc
        result = dec.decode(rec["out"])
        self._post(dec, rec, numbered, shared)
        self._late(dec, rec)
        self.answered.add(dec.objs, len(numbered))
        self.held.extend(dec.objs)
        return result

    def _event(self, dec: Decoder, event: list) -> None:
        kind = event[0]
        if kind in ("cb", "nx"):
            fn = dec.objs[int(event[1])]
            args, kwargs = ((dec.decode(event[2]), dec.decode(event[3])) if kind == "cb" else ([fn], {}))
            fn = fn if kind == "cb" else next
            try:  # the tests' own callback or iterator, used as the candidate used it: its effects happen here too
                out = fn(*args, **kwargs)
            except Exception as exc:
                out = exc
            if len(event) > (4 if kind == "cb" else 2):
                dec.objs.append(out)
        elif kind == "out":
            sys.stdout.write(str(event[1]))
        elif kind == "warn":
            category = dec.trusted_class(event[2])
            if not (isinstance(category, type) and issubclass(category, Warning)):
                category = _standin(str(event[2][1]).rsplit(".", 1)[-1], dec._standin_bases(event[2], Warning))
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
                try:
                    assign(target, node[0], value)
                except ContentsMismatch:
                    raise ReplayMismatch("the recorded arguments do not match the tests' arguments") from None
        if shared is not None:
            for n in self.shared:
                if n in shared:
                    self.ns[n] = shared[n]

    def _late(self, dec: Decoder, rec: dict) -> None:
        """Stage 1's changes to containers of earlier calls that this call made (see `Held`)."""
        for item in rec.get("late") or ():
            if (type(item) is not list or len(item) != 2 or type(item[0]) is not int
                    or not 0 <= item[0] < len(self.held) or type(item[1]) is not list or not item[1]):
                raise ValueError("malformed recording: late change")
            node = item[1]
            value = [[k, dec.decode(v)] for k, v in node[1] or ()] if node[0] == "a" else dec.decode(node)
            try:
                assign(self.held[item[0]], node[0], value)
            except ContentsMismatch:
                raise ReplayMismatch("a recorded later change does not fit the object it is for") from None

    def _handle(self, kind: str, n: int, node: list):
        name = f"#{n}"
        if kind == "p":
            return self.proxies[n]
        if kind == "ho":
            if n in self.proxies or type(node[2]) is not list:
                raise ValueError("malformed recording: handle")
            proxy = self.proxies[n] = handles.make(lambda op, *a, **k: self._use(proxy, name, op, a, k), n, node[2],
                                                   self.handle_classes)
            return proxy
        return self.replay(name) if kind == "h" else self._iterate(name)

    def _use(self, proxy: Handle, name: str, op: str, args: tuple, kwargs: dict):
        """One use of a candidate's object by the tests: replayed as a call, comparisons decided here."""
        answer = self.call(name, (op, *args), kwargs)
        try:
            return handles.replay_answer(proxy, op, args, answer)
        except handles.HandleMismatch as exc:
            raise ReplayMismatch(str(exc)) from None

    def _iterate(self, name: str):
        args: tuple = ()
        while True:
            try:
                value = self.call(name, args, {})
            except StopIteration:
                return
            args = yield from _resumed(value)
