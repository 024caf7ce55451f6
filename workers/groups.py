"""One kind of pool actor (coder or prover workers): which are ready, their queue slots, and their health.

A worker whose call fails is *suspect*: nothing more is sent to it until a probe (`ping`) answers from
its restarted process. If its node is gone (the GCS says so, or its raylet's port refuses), every
worker on that node is suspect at once. Items are never judged here: `WorkerPool.run` decides, with
`failure()`'s answer to "was this item running on a live node when its worker died?".
"""
from __future__ import annotations

import logging
import socket
import threading
import time
from typing import Callable

log = logging.getLogger("workers.pool")

READY, STARTING, SUSPECT = "ready", "starting", "suspect"
PROBE_BACKOFF_S = 0.5  # between pings of a worker that is restarting


def node_alive(node_id: str | None, timeout: float = 1.0) -> bool:
    """False when the GCS has the node dead or its raylet does not accept a connection (killed, unreachable)."""
    import ray

    if not node_id:
        return True
    for node in ray.nodes():
        if node["NodeID"] == node_id:
            if not node["Alive"]:
                return False
            try:
                with socket.create_connection((node["NodeManagerAddress"], node["NodeManagerPort"]), timeout):
                    return True
            except OSError:
                return False
    return False


class WorkerGroup:
    """`n` actors made by `make()`; each takes `cap` queued items and runs `concurrency` at once."""

    def __init__(self, name: str, make: Callable, n: int, cap: int, concurrency: int, demand: dict):
        self.name, self.make, self.n, self.cap, self.concurrency = name, make, n, cap, concurrency
        self.demand = {k: v for k, v in demand.items() if v}  # what one worker asks Ray for
        now = time.monotonic()
        self.handles = [make() for _ in range(n)]
        self.state = [STARTING] * n
        self.since = [now] * n  # when the worker entered its state
        self.node: list[str | None] = [None] * n
        self.pid: list[int | None] = [None] * n
        self.load = [0] * n
        self.progress = [now] * n  # last dispatch-to-idle or completion on that worker (hang clock)
        self.queue: list[list] = [[] for _ in range(n)]  # tokens in dispatch order (the head one runs)
        self.was_running: list[set] = [set() for _ in range(n)]  # snapshot at the worker's failure
        self.last_result = now
        self._probe: list = [None] * n
        self._next_probe = [now] * n
        self._waiting_logged = False
        self._waiting_at, self._waiting_text = 0.0, None
        self._nodes_checked = 0.0
        self._sizes: dict = {}  # token -> items in that task
        self._lock = threading.Lock()
        for w in range(n):
            self._probe[w] = self.handles[w].ping.remote()

    # -- dispatch
    def acquire(self) -> int | None:
        """The least-loaded ready worker with a free slot (now counted as taken), or None."""
        with self._lock:
            ready = [w for w in range(self.n) if self.state[w] == READY and self.load[w] < self.cap]
            if not ready:
                return None
            w = min(ready, key=self.load.__getitem__)
            if self.load[w] == 0:
                self.progress[w] = max(self.progress[w], time.monotonic())
            self.load[w] += 1
            return w

    def sent(self, w: int, token, size: int = 1) -> None:
        """A task of `size` items went to worker `w` (its hang clock allows `size` item timeouts)."""
        with self._lock:
            self.queue[w].append(token)
            self._sizes[token] = size

    def release(self, w: int, token=None, finished: bool = False) -> None:
        with self._lock:
            self.load[w] -= 1
            now = time.monotonic()
            self.progress[w] = max(self.progress[w], now)
            if finished:
                self.last_result = now
            if token is not None and token in self.queue[w]:
                self.queue[w].remove(token)
            self._sizes.pop(token, None)

    # -- health
    def failure(self, w: int, token) -> bool:
        """Worker `w` failed the call `token`: suspend it; True if the item ran there on a node that is alive.

        Only the items at the head of the worker's queue were running (actor calls run in order); the
        ones behind them, and any item on a lost node, are retried without using an attempt.
        """
        with self._lock:
            first = self.state[w] == READY
            if first:
                self.was_running[w] = set(self.queue[w][: self.concurrency])
                self._suspend(w, "its call failed")
            ran = token in self.was_running[w]
            node = self.node[w]
        if ran and not node_alive(node):
            self._node_lost(node)
            return False
        return ran

    def _node_lost(self, node: str) -> None:
        with self._lock:
            hit = [w for w in range(self.n) if self.node[w] == node]
            for w in hit:
                self.was_running[w] = set()
                self.node[w] = None  # the node is gone: no second report of it
                if self.state[w] == READY:
                    self._suspend(w, "its node is gone")
        if hit:
                log.warning("node %s is gone: %s worker(s) %s suspended; their items are retried on live workers",
                        node[:12], self.name, hit)

    def _suspend(self, w: int, why: str) -> None:
        # caller holds the lock
        self.state[w], self.since[w] = SUSPECT, time.monotonic()
        self._next_probe[w] = time.monotonic() + 0.2
        self._probe[w] = None
        log.warning("%s worker %d lost (%s; pid %s); no items go to it until it answers again",
                    self.name, w, why, self.pid[w])

    def watch_nodes(self, every_s: float = 1.0) -> None:
        """Suspend ready workers whose node the GCS has declared dead (idle ones fail no call to tell us)."""
        import ray

        now = time.monotonic()
        if now - self._nodes_checked < every_s:
            return
        self._nodes_checked = now
        with self._lock:
            mine = {n for w, n in enumerate(self.node) if n and self.state[w] == READY}
        if mine:
            dead = mine - {n["NodeID"] for n in ray.nodes() if n["Alive"]}
            for node in dead:
                self._node_lost(node)

    def poll(self) -> None:
        """Advance probes: a worker whose ping answered is ready again; a failed ping is retried."""
        import ray

        self.watch_nodes()
        with self._lock:
            now = time.monotonic()
            for w in range(self.n):
                if self.state[w] != READY and self._probe[w] is None and now >= self._next_probe[w]:
                    self._probe[w] = self.handles[w].ping.remote()
            probes = {self._probe[w]: w for w in range(self.n) if self._probe[w] is not None}
        if not probes:
            return
        done, _ = ray.wait(list(probes), num_returns=len(probes), timeout=0)
        for ref in done:
            w = probes[ref]
            try:
                pid, node = ray.get(ref)
            except Exception:  # still restarting or unreachable: ping again shortly
                with self._lock:
                    self._probe[w], self._next_probe[w] = None, time.monotonic() + PROBE_BACKOFF_S
                continue
            with self._lock:
                was, took = self.state[w], time.monotonic() - self.since[w]
                self.state[w], self.since[w], self._probe[w] = READY, time.monotonic(), None
                self.pid[w], self.node[w] = pid, node
                self.was_running[w] = set()
                self.progress[w] = time.monotonic()
            if was == SUSPECT:
                log.warning("%s worker %d is back (pid %d on node %s) after %.1f s", self.name, w, pid, node[:12], took)

    def hung(self, timeout: float) -> list[int]:
        """Busy ready workers with no finished item for `timeout` s (the caller restarts them).

        A reported worker's clock restarts one `timeout` in the future: its restart (process
        start, imports) must not count against the items retried on it.
        """
        now, out = time.monotonic(), []
        with self._lock:
            for w in range(self.n):
                head = self._sizes.get(self.queue[w][0], 1) if self.queue[w] else 1
                if self.state[w] == READY and self.load[w] and now - self.progress[w] > timeout * head:
                    self.progress[w] = now + timeout
                    out.append(w)
        return out

    def ready_count(self) -> int:
        with self._lock:
            return self.state.count(READY)

    def waiting(self, grace_s: float = 10.0) -> str | None:
        """Why some workers are not running (restarting, or no node has room for them), or None."""
        import ray

        now = time.monotonic()
        if now - self._waiting_at < 2.0:  # asked every loop turn; the answer costs GCS calls
            return self._waiting_text
        self._waiting_at = now
        with self._lock:
            down = [w for w in range(self.n) if self.state[w] != READY and now - self.since[w] > grace_s]
            longest = max((now - self.since[w] for w in down), default=0.0)
        if not down:
            if self._waiting_logged:
                self._waiting_logged = False
                log.warning("all %d %s workers are running again", self.n, self.name)
            self._waiting_text = None
            return None
        free, total = ray.available_resources(), ray.cluster_resources()
        room = ", ".join(f"{k} {free.get(k, 0):g} free of {total.get(k, 0):g}" for k in self.demand) or "no demand"
        text = (f"{len(down)} of {self.n} {self.name} worker(s) not running for up to {longest:.0f} s "
                f"(restarting, or pending placement: each needs {self.demand}; the cluster has {room})")
        if not self._waiting_logged:
            self._waiting_logged = True
            log.warning("placement pending: %s", text)
        self._waiting_text = text
        return text

    def status(self) -> dict:
        with self._lock:
            return {"workers": self.n, "ready": self.state.count(READY), "starting": self.state.count(STARTING),
                    "suspect": self.state.count(SUSPECT), "nodes": sorted({n[:12] for n in self.node if n}),
                    "demand": self.demand}

    def kill_all(self) -> None:
        import ray

        for a in self.handles:
            try:
                ray.kill(a, no_restart=True)
            except Exception:
                pass
