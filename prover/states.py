"""The open proof states of one environment: grouped by proof, dropped when released, LRU-bounded.

A *proof* is everything reached from one `ProofEnv.start`; `release` forgets a whole proof (a
search releases its own when it ends). Proofs may carry a key (e.g. the theorem whose Lean
process holds them); `on_key_gone(key)` runs when the last proof with that key is gone. `max_states` bounds what callers that never release
can pile up: past it the least recently used state is evicted, and using it later is an error
that names the state and the bound.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, Callable, Generic, Hashable, TypeVar

Ref = TypeVar("Ref")
_EVICTIONS_REMEMBERED = 10_000  # at least: evicted handles named as such on use (ints, a few hundred KiB)


class UnknownState(LookupError):
    """A state handle this table does not hold (never issued, released, or evicted); the message says which."""


class StateTable(Generic[Ref]):
    """Thread-safe map handle -> backend reference, grouped by proof."""

    def __init__(self, max_states: int, setting: str, on_key_gone: Callable[[Hashable], None] | None = None):
        if max_states < 1:
            raise ValueError(f"max_states must be >= 1, got {max_states}")
        self.max_states = max_states
        self.setting = setting  # the config field that sets the bound, for error messages
        self._on_key_gone = on_key_gone
        self._lock = threading.Lock()
        self._next = 0
        self._refs: OrderedDict[int, tuple[int, Ref]] = OrderedDict()  # handle -> (proof, ref), LRU order
        self._proofs: dict[int, tuple[Hashable, set[int]]] = {}  # proof -> (key, its live handles)
        self._keys: dict[Hashable, int] = {}  # key -> proofs held with it
        self._evicted: OrderedDict[int, int] = OrderedDict()  # recently evicted handle -> its proof

    def __len__(self) -> int:
        with self._lock:
            return len(self._refs)

    @property
    def proofs(self) -> int:
        """Proofs with at least one state held."""
        with self._lock:
            return len(self._proofs)

    def add(self, ref: Ref, parent: int | None = None, key: Hashable = None) -> int:
        """A new handle for `ref` in `parent`'s proof; a new proof tagged `key` without a (held) parent."""
        gone: list[Hashable] = []
        with self._lock:
            handle, self._next = self._next, self._next + 1
            if parent is not None and parent in self._refs:
                proof = self._refs[parent][0]
            else:
                proof = handle
                self._proofs[proof] = (key, set())
                self._keys[key] = self._keys.get(key, 0) + 1
            self._refs[handle] = (proof, ref)
            self._proofs[proof][1].add(handle)
            while len(self._refs) > self.max_states:
                gone += self._evict_oldest()
        self._notify(gone)
        return handle

    def get(self, handle: int) -> Ref:
        """The reference behind `handle` (now most recently used); `UnknownState` saying why not."""
        with self._lock:
            entry = self._refs.get(handle)
            if entry is not None:
                self._refs.move_to_end(handle)
                return entry[1]
            evicted = handle in self._evicted
            issued = 0 <= handle < self._next
        if evicted:
            raise UnknownState(f"proof state {handle} was evicted: this environment keeps at most "
                               f"{self.max_states} proof states ({self.setting}); raise it, or release "
                               f"finished proofs with env.release(state)")
        if issued:
            raise UnknownState(f"proof state {handle} is no longer held: its proof was released "
                               f"(env.release, e.g. when its search ended) or evicted long ago "
                               f"(at most {self.max_states} proof states are kept: {self.setting})")
        raise UnknownState(f"unknown proof state {handle}: it was not produced by this environment")

    def release(self, handle: int) -> None:
        """Forget every state of the proof `handle` belongs to (also when `handle` itself was evicted,
        e.g. the root of a long search); a proof no longer held is a no-op."""
        with self._lock:
            entry = self._refs.get(handle)
            proof = entry[0] if entry is not None else self._evicted.get(handle)
            if proof not in self._proofs:
                return
            key, handles = self._proofs.pop(proof)
            for h in handles:
                del self._refs[h]
            gone = self._drop_key(key)
        self._notify(gone)

    def clear(self) -> None:
        """Forget everything (the environment is closing); no callbacks."""
        with self._lock:
            self._refs.clear()
            self._proofs.clear()
            self._evicted.clear()
            self._keys.clear()

    def _evict_oldest(self) -> list[Hashable]:
        handle, (proof, _) = self._refs.popitem(last=False)
        self._evicted[handle] = proof
        if len(self._evicted) > max(self.max_states, _EVICTIONS_REMEMBERED):  # nor may this grow without bound
            self._evicted.popitem(last=False)
        key, handles = self._proofs[proof]
        handles.discard(handle)
        if handles:
            return []
        del self._proofs[proof]
        return self._drop_key(key)

    def _drop_key(self, key: Hashable) -> list[Hashable]:
        left = self._keys.pop(key) - 1
        if left:
            self._keys[key] = left
            return []
        return [] if key is None else [key]

    def _notify(self, keys: list[Any]) -> None:
        # Outside the lock: the callback may be slow (closing a Lean process) or use the table.
        if self._on_key_gone is not None:
            for key in keys:
                self._on_key_gone(key)
