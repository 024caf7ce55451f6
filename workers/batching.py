"""Batches generation requests from many concurrent callers into few backend calls.

Callers block in `submit`; one loop thread gathers requests for up to `window_s` (or until
`max_batch_size` prompts wait), groups them by sampling params, and runs each group as one batch.
"""
from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import Future

from .backends import GenerationBackend, SamplingParams


class Batcher:
    """Thread-safe front of a backend; `stats` counts backend calls and prompts served."""

    def __init__(self, backend: GenerationBackend, max_batch_size: int = 8, window_s: float = 0.02):
        self.backend = backend
        self.max_batch_size = max_batch_size
        self.window_s = window_s
        self.stats = {"batches": 0, "prompts": 0, "requests": 0}
        self._queue: queue.Queue = queue.Queue()
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name="batcher", daemon=True)
        self._thread.start()

    def submit(self, prompts: list[str], params: SamplingParams, timeout: float | None = None) -> list[dict]:
        """Completions for `prompts`, in order; blocks until their batch has run."""
        if self._closed:
            raise RuntimeError("batcher is closed")
        if not prompts:
            return []
        fut: Future = Future()
        self._queue.put((list(prompts), params, fut))
        return fut.result(timeout=timeout)

    def close(self) -> None:
        self._closed = True
        self._queue.put(None)
        self._thread.join(timeout=5)

    def _gather(self) -> list | None:
        first = self._queue.get()
        if first is None:
            return None
        pending = [first]
        n = len(first[0])
        deadline = time.monotonic() + self.window_s
        while n < self.max_batch_size:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                req = self._queue.get(timeout=left)
            except queue.Empty:
                break
            if req is None:
                self._queue.put(None)  # let the loop see the close after this batch
                break
            pending.append(req)
            n += len(req[0])
        return pending

    def _loop(self) -> None:
        while True:
            pending = self._gather()
            if pending is None:
                return
            groups: dict[SamplingParams, list] = {}
            for req in pending:
                groups.setdefault(req[1], []).append(req)
            for params, reqs in groups.items():
                self._run_group(params, reqs)

    def _run_group(self, params: SamplingParams, reqs: list) -> None:
        # One backend call per max_batch_size prompts; each caller gets its slice back.
        flat = [(i, p) for i, r in enumerate(reqs) for p in r[0]]
        outs: list[dict] = []
        try:
            for start in range(0, len(flat), self.max_batch_size):
                chunk = [p for _, p in flat[start:start + self.max_batch_size]]
                outs.extend(self.backend.complete(chunk, params))
                self.stats["batches"] += 1
            self.stats["prompts"] += len(flat)
            self.stats["requests"] += len(reqs)
        except Exception as exc:
            for r in reqs:
                r[2].set_exception(exc)
            return
        pos = 0
        for r in reqs:
            r[2].set_result(outs[pos:pos + len(r[0])])
            pos += len(r[0])
