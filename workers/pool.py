"""The worker pool: coder, prover and model actors on Ray, and the loop that feeds a job through them.

Every item of a job comes back exactly once through `on_result`, with a real verdict: an item whose
worker or node died is re-run on a live worker (the pool retries, not Ray, so it can count). Only
an item whose worker died while running it on a live node `max_item_attempts` times is reported as
not graded (`ungraded: true`); a worker busy past `item_timeout_s` is restarted, which counts the
same. Workers are created when a job first needs them; at most `in_flight_per_worker` items per
worker are submitted at a time (backpressure); a job whose workers finish nothing for
`stall_timeout_s` fails with the reason (e.g. workers waiting for placement). Once a job is under way
its items travel `items_per_task` to a Ray task (fewer tasks: less GCS growth, less overhead); items
of a lost task are retried one per task, so an attempt is charged only to the item that was running.
"""
from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections import deque
from typing import Callable, Iterable

from .config import PoolConfig
from .groups import WorkerGroup
from .handlers import error_result
from .registry import KINDS, kind_of

log = logging.getLogger(__name__)

# Set before Ray is imported, and only when proofcode starts its own Ray: a local Ray binds to 127.0.0.1
# and reports no usage. A cluster joined with an address keeps its own settings.
LOCAL_RAY_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}
# The GCS keeps an event record of every task (for `ray list tasks`), ~3.5 KB each, up to 100,000 by
# default: one long job would grow it by hundreds of MB. A local Ray keeps the last 10,000.
LOCAL_RAY_SYSTEM_CONFIG = {"task_events_max_num_task_in_gcs": 10_000}


class JobStalled(RuntimeError):
    """No item of the job finished for `stall_timeout_s`; the message says what the workers wait for."""


def ray_address(address: str | None = None) -> str | None:
    """The cluster to join: `address`, else $RAY_ADDRESS, else None (start a local Ray)."""
    return address or os.environ.get("RAY_ADDRESS") or None


def init_ray(address: str | None = None, pool: PoolConfig | None = None, num_cpus: int | None = None) -> None:
    """Join the Ray cluster at `address` ('auto', host:port, ray://...; default $RAY_ADDRESS) or start a local one.

    A local Ray gets `num_cpus` logical CPUs, else enough for `pool`'s actors (at least the core count).
    """
    address = ray_address(address)
    if not address:
        for key, value in LOCAL_RAY_ENV.items():
            os.environ.setdefault(key, value)
    import ray

    if ray.is_initialized():
        return
    kwargs = dict(log_to_driver=False, configure_logging=False)
    if address:
        try:
            ray.init(address=address, **kwargs)
        except ConnectionError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ConnectionError(f"cannot join the Ray cluster at {address!r} ({first}); start it with "
                                  "`ray start --head`, or fix --address / RAY_ADDRESS") from None
        return
    # Locally, actors mostly wait on subprocesses (sandbox, Lean), so logical CPUs may exceed cores.
    if num_cpus is None:
        num_cpus = max(os.cpu_count() or 1, math.ceil(pool.cpus_needed()) if pool else 0)
    # address="local": a new Ray of our own even when a cluster already runs on this machine (a bare
    # ray.init() would join that one, and refuse our num_cpus).
    ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, _system_config=LOCAL_RAY_SYSTEM_CONFIG,
             **kwargs)


class WorkerPool:
    """Actors for one service or demo; Ray must already be initialised (see `init_ray`)."""

    def __init__(self, config: PoolConfig | None = None, item_timeout_s: float | None = None):
        import ray

        from . import actors

        if not ray.is_initialized():
            raise RuntimeError("Ray is not initialised: call workers.pool.init_ray() first")
        self.config = config or PoolConfig()
        self.item_timeout_s = item_timeout_s or self.config.item_timeout_s
        self._actors = actors
        # The model's calls are idempotent generation: Ray may retry those itself.
        self._retries = dict(max_restarts=self.config.max_actor_restarts,
                             max_task_retries=self.config.max_item_attempts - 1)
        self._lock = threading.Lock()
        self._groups: dict[str, WorkerGroup] = {}
        self._model = None
        self._monitor: threading.Thread | None = None
        self._closed = threading.Event()

    # -- actors created on first use: a grading-only service never loads the model or Lean
    def model(self):
        """The model worker handle (created, and the model loaded, on first call)."""
        with self._lock:
            if self._model is None:
                m = self.config.model
                if not m.enabled:
                    raise RuntimeError("this pool has no model worker (pool.model.enabled is false)")
                self._model = self._actors.ModelWorker.options(
                    **m.resources.ray_options(), max_concurrency=m.max_concurrency, **self._retries
                ).remote(m.model_dump())
            return self._model

    def group(self, kind: str) -> WorkerGroup:
        """The coder or prover workers for a job kind (created on first use)."""
        name = kind_of(kind).group
        c = self.config
        n = c.coder_workers if name == "coder" else c.prover_workers
        if not n:
            raise RuntimeError(f"the pool has no {name} workers for {kind} jobs (pool.{name}_workers is 0)")
        model = self.model() if name == "prover" and c.model.enabled else None
        with self._lock:
            if name not in self._groups:
                self._groups[name] = self._make_group(name, n, model)
                if self._monitor is None:
                    self._monitor = threading.Thread(target=self._watch, name="pool-health", daemon=True)
                    self._monitor.start()
            return self._groups[name]

    def _watch(self, every_s: float = 0.5) -> None:
        """Keep every group's health current (probes, lost nodes, placement) whether or not a job runs."""
        while not self._closed.wait(every_s):
            with self._lock:
                groups = list(self._groups.values())
            for g in groups:
                try:
                    g.poll()
                    g.waiting()  # logs when placement becomes pending and when it resolves
                except Exception as exc:  # Ray going away under us: the next turn tries again
                    log.debug("pool health check failed: %s", exc)

    def _make_group(self, name: str, n: int, model) -> WorkerGroup:
        c = self.config
        # No Ray task retries: a failed call comes back to the pool, which knows whether the item ran.
        opts = dict(max_restarts=c.max_actor_restarts, max_task_retries=0)
        if name == "coder":
            res = c.coder_resources
            make = lambda: self._actors.CoderWorker.options(**res.ray_options(), **opts).remote()  # noqa: E731
            concurrency = 1
        else:
            res = c.prover_resources
            make = lambda: self._actors.ProverWorker.options(  # noqa: E731
                **res.ray_options(), **opts, max_concurrency=c.repl_pool_size
            ).remote(c.lean_project, model, c.repl_pool_size, c.repl_command, c.max_projects)
            concurrency = c.repl_pool_size
        demand = {"CPU": res.num_cpus, "GPU": res.num_gpus}
        log.info("starting %d %s worker(s), each asking Ray for %s", n, name, demand)
        return WorkerGroup(name, make, n, c.in_flight_per_worker, concurrency, demand)

    @property
    def coders(self) -> list:
        return self.group("grading").handles

    def workers(self, kind: str) -> list:
        return self.group(kind).handles

    def worker_pids(self, kind: str = "grading") -> list[int]:
        import ray

        return ray.get([w.pid.remote() for w in self.workers(kind)])

    def status(self) -> dict:
        """Per worker group: how many are ready/starting/suspect, their nodes, and why any wait."""
        with self._lock:
            groups = dict(self._groups)
        return {name: {**g.status(), "waiting": g.waiting()} for name, g in groups.items()}

    def waiting(self, kind: str) -> str | None:
        """Why the workers for `kind` jobs are (partly) not running, if they are not."""
        with self._lock:
            g = self._groups.get(KINDS[kind].group if kind in KINDS else "")
        return g.waiting() if g else None

    def complete(self, prompts: list[str], params: dict, timeout: float | None = None) -> list[dict]:
        """Completions from the model worker (batched with other callers'); waits at most the backend's request timeout."""
        import ray

        timeout = self.config.model.backend.request_timeout_s if timeout is None else timeout
        return ray.get(self.model().generate.remote(prompts, params), timeout=timeout)

    def model_info(self) -> dict:
        import ray

        return ray.get(self.model().info.remote())

    def run(self, kind: str, items: Iterable[tuple[int, dict]], params: dict,
            on_result: Callable[[int, dict], None], should_stop: Callable[[], bool] = lambda: False) -> bool:
        """Run (index, item) pairs through the workers; `on_result(index, result)` once per item.

        Safe to call from several threads (one per job): the workers and their slots are shared, so
        `in_flight_per_worker` bounds a worker's queue across all jobs. Returns False if
        `should_stop()` turned true first (unfinished items are simply not reported); raises
        JobStalled when the workers finish nothing for `stall_timeout_s`.
        """
        import ray

        group = self.group(kind)
        job = _JobFeed(items)
        in_flight: dict = {}  # ref -> (worker, [(index, item), ...])
        params_ref = ray.put(params)  # once per job, not once per item (inline problem sets can be large)
        started = time.monotonic()
        try:
            while True:
                if should_stop():
                    return False
                while (w := group.acquire()) is not None:
                    # slow start: single items until every worker slot has had one, then bigger tasks
                    batch = job.next_batch(min(self.config.items_per_task, 1 + job.sent // (group.n * group.cap)))
                    if not batch:
                        group.release(w)
                        break
                    ref = group.handles[w].run_batch.remote(kind, [item for _, item in batch], params_ref)
                    group.sent(w, ref, len(batch))
                    in_flight[ref] = (w, batch)
                if not in_flight and job.done():
                    return True
                self._check_stall(group, started)
                if not in_flight:
                    time.sleep(0.1)  # no ready worker with a free slot (restarting, or busy with other jobs)
                    continue
                ready, _ = ray.wait(list(in_flight), num_returns=1, timeout=0.5)
                for ref in ready:
                    w, batch = in_flight.pop(ref)
                    for idx, result in self._outcome(group, kind, w, ref, batch, job):
                        on_result(idx, result)
                for w in group.hung(self.item_timeout_s):
                    log.warning("%s worker %d exceeded item_timeout_s=%.0f; restarting it", kind, w, self.item_timeout_s)
                    ray.kill(group.handles[w], no_restart=False)
        finally:
            for w, _ in in_flight.values():  # stopped early: give the slots back
                group.release(w)

    def _outcome(self, group: WorkerGroup, kind: str, w: int, ref, batch: list, job: "_JobFeed") -> list:
        """(index, result) for the task's items; none for items queued again because their worker or node was lost."""
        import ray
        from ray.exceptions import RayTaskError

        try:
            results = ray.get(ref)
        except RayTaskError as exc:  # the handler itself raised: that is each item's verdict
            results = [error_result(exc.as_instanceof_cause(), "worker raised")] * len(batch)
        except Exception as exc:  # the worker, its node or the object is gone: infrastructure
            ran = group.failure(w, ref)
            group.release(w, ref)
            if len(batch) > 1:  # which of them killed it is unknown: each runs alone, no attempt used
                log.warning("%s items %s retried one by one (their worker or node was lost)", kind,
                            [i for i, _ in batch])
                for idx, item in batch:
                    job.retry(idx, item)
                return []
            return self._lost_single(group, kind, batch[0], ran, exc, job)
        group.release(w, ref, finished=True)
        return [(idx, result) for (idx, _), result in zip(batch, results)]

    def _lost_single(self, group: WorkerGroup, kind: str, entry: tuple, ran: bool, exc: Exception,
                     job: "_JobFeed") -> list:
        """A lone item whose worker died: retried, or after `max_item_attempts` deaths while it ran, not graded."""
        idx, item = entry
        attempts = job.charge(idx) if ran else job.attempts.get(idx, 0)
        limit = self.config.max_item_attempts
        if attempts >= limit:
            log.warning("%s item %d not graded: its worker died %d time(s) while running it", kind, idx, attempts)
            return [(idx, {"status": "error", "passed": False, "ungraded": True,
                           "detail": f"not graded: the {group.name} worker died {attempts} time(s) while running "
                                     f"this item on a live node ({type(exc).__name__}); the item itself may kill "
                                     "its worker"})]
        log.warning("%s item %d retried on another worker (%s; %d of %d attempts used)", kind, idx,
                    "its worker died while running it" if ran else "its worker or node was lost before it ran",
                    attempts, limit)
        job.retry(idx, item)
        return []

    def _check_stall(self, group: WorkerGroup, started: float) -> None:
        idle = time.monotonic() - max(group.last_result, started)
        reason = group.waiting()
        if idle > self.config.stall_timeout_s:
            raise JobStalled(f"no item finished for {idle:.0f} s (pool.stall_timeout_s="
                             f"{self.config.stall_timeout_s:g}): {reason or 'the workers are busy or hung'}")

    def shutdown(self) -> None:
        """Kill this pool's actors (the Ray cluster itself stays up)."""
        import ray

        self._closed.set()
        if self._monitor is not None:
            self._monitor.join(timeout=10)
        with self._lock:
            groups, model = list(self._groups.values()), self._model
            self._groups, self._model, self._monitor = {}, None, None
        self._closed.clear()
        for g in groups:
            g.kill_all()
        if model is not None:
            try:
                ray.kill(model, no_restart=True)
            except Exception:
                pass


class _JobFeed:
    """A job's items: retries first (each alone, so an attempt is charged to the right item), then the source."""

    def __init__(self, items: Iterable[tuple[int, dict]]):
        self.source = iter(items)
        self.exhausted = False
        self.retries: deque = deque()
        self.attempts: dict[int, int] = {}
        self.sent = 0  # tasks dispatched so far (the slow start's clock)

    def next_batch(self, size: int) -> list[tuple[int, dict]]:
        self.sent += 1
        if self.retries:
            return [self.retries.popleft()]
        batch = []
        while not self.exhausted and len(batch) < size:
            nxt = next(self.source, None)
            if nxt is None:
                self.exhausted = True
            else:
                batch.append(nxt)
        return batch

    def retry(self, idx: int, item: dict) -> None:
        self.retries.append((idx, item))

    def charge(self, idx: int) -> int:
        self.attempts[idx] = self.attempts.get(idx, 0) + 1
        return self.attempts[idx]

    def done(self) -> bool:
        return self.exhausted and not self.retries
