"""Containers the program may keep after a call gives or takes them (an internal list it returned, a list a
generator of its consumes): stage 1 watches them, and records the contents a later call leaves ("late")."""
from __future__ import annotations

import collections
import operator

from coder.sandbox.plain import Encoder, contents


class Held:
    """Every object the session's calls numbered (arguments, answers), in the same order in both stages, and,
    in stage 1, the containers among the calls' own arguments and answers whose later changes are recorded:
    the program may keep them (an internal list it returned, a list a generator of its consumes). A change
    is a different item (by identity) at the container's top level: an item changed inside (a row of a
    returned matrix) is not seen."""

    def __init__(self):
        self.objs: list = []
        self.watched: list[list] = []  # [index in objs, shallow copy]
        self.items = 0

    def add(self, enc: Encoder, top: tuple) -> None:
        base = len(self.objs)
        self.objs.extend(enc.objs)
        for obj in top:
            i = enc.memo.get(id(obj))
            if (i is None or not _watchable(obj) or len(self.watched) >= _MAX_WATCHED
                    or self.items + len(obj) > _MAX_WATCHED_ITEMS or any(self.objs[w[0]] is obj for w in self.watched)):
                continue
            self.watched.append([base + i, _look(obj)])
            self.items += len(obj)

    def changes(self, enc: Encoder) -> list:
        """[index, new contents] of each watched container changed since its contents were last recorded."""
        late = []
        for watched in self.watched:
            obj = self.objs[watched[0]]
            if not _same(obj, watched[1]):
                late.append([watched[0], contents(enc, obj)])
                watched[1] = _look(obj)
        return late


_WATCHED_TYPES = (list, dict, set, bytearray, collections.deque)
# Each call looks at every watched container again, so a session watches a bounded amount: the first 64
# containers, 20,000 items in all (beyond, a container keeps the contents it was answered with).
_MAX_WATCHED, _MAX_WATCHED_ITEMS = 64, 20_000


def _watchable(obj: object) -> bool:
    t = type(obj)
    return t in _WATCHED_TYPES or isinstance(obj, dict) and t.__module__ == "collections"


def _look(obj: object):
    """A shallow copy: it keeps the items alive, so identity compares them."""
    if type(obj) is bytearray:
        return bytes(obj)
    return (list(obj), list(obj.values())) if isinstance(obj, dict) else list(obj)


def _same(obj: object, copy) -> bool:
    """Whether `obj` still holds the very items of `copy` (no item's __eq__ runs: they may be the program's)."""
    if type(obj) is bytearray:
        return obj == copy
    if isinstance(obj, dict):
        keys, values = copy
        return (len(obj) == len(keys) and all(map(operator.is_, obj, keys))
                and all(map(operator.is_, obj.values(), values)))
    if type(obj) is set:
        return len(obj) == len(copy) and {id(v) for v in copy} == {id(v) for v in obj}
    return len(obj) == len(copy) and all(map(operator.is_, obj, copy))
