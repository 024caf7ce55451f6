"""The worker pool: coder, prover and model actors on Ray, and the loop that feeds a job through them.

Every item of a job comes back exactly once through `on_result`: a worker that dies is restarted by
Ray and its in-flight items are re-run (task retries); an item whose worker keeps dying, or that
hangs past `item_timeout_s`, becomes that item's `error` verdict. At most `in_flight_per_worker`
items per worker are submitted at a time, so a huge job never floods Ray (backpressure).
"""
from __future__ import annotations

import logging
import math
import os
import threading
import time
from typing import Callable, Iterable

from .config import PoolConfig
from .handlers import error_result

log = logging.getLogger(__name__)

WORKER_KIND = {"grading": "coder", "math": "coder", "proof": "prover"}


def init_ray(address: str | None = None, pool: PoolConfig | None = None) -> None:
    """Join the Ray cluster at `address` ('auto', host:port, ray://...) or start a local one sized for `pool`."""
    import ray

    if ray.is_initialized():
        return
    kwargs = dict(log_to_driver=False, configure_logging=False)
    if address:
        ray.init(address=address, **kwargs)
        return
    # Locally, actors mostly wait on subprocesses (sandbox, Lean), so logical CPUs may exceed cores.
    cpus = max(os.cpu_count() or 1, math.ceil(pool.cpus_needed()) if pool else 0)
    ray.init(num_cpus=cpus, include_dashboard=False, **kwargs)


def _check_capacity(config: PoolConfig) -> None:
    """Fail now, naming the numbers, instead of waiting forever for an actor Ray cannot place."""
    import ray

    have = ray.cluster_resources()
    for what, need in (("CPU", config.cpus_needed()), ("GPU", config.gpus_needed())):
        if need > have.get(what, 0) + 1e-9:
            raise RuntimeError(
                f"the pool needs {need:g} {what}s (coder/prover/model workers x their num_{what.lower()}s) "
                f"but the Ray cluster has {have.get(what, 0):g}; use fewer workers, lower the per-actor "
                f"resources in the config, or join a bigger cluster with --address")


class WorkerPool:
    """Actors for one service or demo; Ray must already be initialised (see `init_ray`)."""

    def __init__(self, config: PoolConfig | None = None, item_timeout_s: float | None = None):
        import ray

        from . import actors

        if not ray.is_initialized():
            raise RuntimeError("Ray is not initialised: call workers.pool.init_ray() first")
        self.config = config or PoolConfig()
        self.item_timeout_s = item_timeout_s or self.config.item_timeout_s
        _check_capacity(self.config)
        self._actors = actors
        retries = dict(max_restarts=self.config.max_actor_restarts,
                       max_task_retries=self.config.max_item_attempts - 1)
        self.coders = [
            actors.CoderWorker.options(**self.config.coder_resources.ray_options(), **retries).remote()
            for _ in range(self.config.coder_workers)
        ]
        self._retries = retries
        self._lock = threading.Lock()
        self._slot_groups: dict[str, _Slots] = {}
        self._model = None
        self._provers: list | None = None

    # -- actors created on first use: a grading-only service never loads the model or Lean
    def model(self):
        """The model worker handle (created, and the model loaded, on first call)."""
        if self._model is None:
            m = self.config.model
            if not m.enabled:
                raise RuntimeError("this pool has no model worker (pool.model.enabled is false)")
            self._model = self._actors.ModelWorker.options(
                **m.resources.ray_options(), max_concurrency=m.max_concurrency, **self._retries
            ).remote(m.model_dump())
        return self._model

    def provers(self) -> list:
        if self._provers is None:
            model = self.model() if self.config.model.enabled else None
            self._provers = [
                self._actors.ProverWorker.options(**self.config.prover_resources.ray_options(), **self._retries,
                                                  max_concurrency=self.config.repl_pool_size)
                .remote(self.config.lean_project, model, self.config.repl_pool_size, self.config.repl_command)
                for _ in range(self.config.prover_workers)
            ]
        return self._provers

    def workers(self, kind: str) -> list:
        if WORKER_KIND.get(kind) == "coder":
            return self.coders
        if WORKER_KIND.get(kind) == "prover":
            return self.provers()
        raise ValueError(f"unknown job kind {kind!r}; expected one of {sorted(WORKER_KIND)}")

    def worker_pids(self, kind: str = "grading") -> list[int]:
        import ray

        return ray.get([w.pid.remote() for w in self.workers(kind)])

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

        Safe to call from several threads (one per job): the per-worker slots are shared, so
        `in_flight_per_worker` bounds a worker's queue across all jobs. Returns False if
        `should_stop()` turned true first (unfinished items are simply not reported).
        """
        import ray

        workers = self.workers(kind)
        if not workers:
            raise RuntimeError(f"the pool has no {WORKER_KIND[kind]} workers for {kind} jobs")
        slots = self._slots(WORKER_KIND[kind], len(workers))
        in_flight: dict = {}  # ref -> (worker, index)
        source = iter(items)
        exhausted = False
        params_ref = ray.put(params)  # once per job, not once per item (inline problem sets can be large)
        try:
            while True:
                if should_stop():
                    return False
                while not exhausted:
                    w = slots.acquire()
                    if w is None:
                        break
                    nxt = next(source, None)
                    if nxt is None:
                        slots.release(w)
                        exhausted = True
                        break
                    in_flight[workers[w].run.remote(kind, nxt[1], params_ref)] = (w, nxt[0])
                if not in_flight:
                    if exhausted:
                        return True
                    time.sleep(0.05)  # every slot is taken by other jobs
                    continue
                ready, _ = ray.wait(list(in_flight), num_returns=1, timeout=0.5)
                for ref in ready:
                    w, idx = in_flight.pop(ref)
                    slots.release(w)
                    on_result(idx, self._result(ref, kind))
                for w in slots.hung(self.item_timeout_s):
                    log.warning("%s worker %d exceeded item_timeout_s=%.0f; restarting it", kind, w, self.item_timeout_s)
                    ray.kill(workers[w], no_restart=False)
        finally:
            for w, _ in in_flight.values():  # stopped early: give the slots back
                slots.release(w)

    def _slots(self, group: str, n: int) -> "_Slots":
        with self._lock:
            if group not in self._slot_groups or self._slot_groups[group].n != n:
                self._slot_groups[group] = _Slots(n, self.config.in_flight_per_worker)
            return self._slot_groups[group]

    def _result(self, ref, kind: str) -> dict:
        import ray
        from ray.exceptions import RayActorError, RayTaskError

        try:
            return ray.get(ref)
        except RayActorError as exc:  # Ray's retries are used up: the worker died on every attempt
            return {"status": "error", "passed": False,
                    "detail": f"{WORKER_KIND[kind]} worker died {self.config.max_item_attempts} time(s) "
                              f"running this item ({type(exc).__name__}); the item was not completed"}
        except RayTaskError as exc:
            return error_result(exc.as_instanceof_cause(), "worker raised")
        except Exception as exc:  # ObjectLost, ActorUnavailable...: still this item's verdict
            return error_result(exc, "worker unavailable")

    def shutdown(self) -> None:
        """Kill this pool's actors (the Ray cluster itself stays up)."""
        import ray

        for a in [*self.coders, *(self._provers or []), *([self._model] if self._model else [])]:
            try:
                ray.kill(a, no_restart=True)
            except Exception:
                pass
        self.coders, self._provers, self._model = [], None, None


class _Slots:
    """Per-worker queue slots shared by all jobs, and when each worker last made progress."""

    def __init__(self, n: int, cap: int):
        self.n, self.cap = n, cap
        self.load = [0] * n
        self.progress = [time.monotonic()] * n  # last dispatch-to-idle or completion on that worker
        self._lock = threading.Lock()

    def acquire(self) -> int | None:
        """The least-loaded worker with a free slot (now counted as taken), or None."""
        with self._lock:
            w = min(range(self.n), key=self.load.__getitem__)
            if self.load[w] >= self.cap:
                return None
            if self.load[w] == 0:
                self.progress[w] = max(self.progress[w], time.monotonic())
            self.load[w] += 1
            return w

    def release(self, w: int) -> None:
        with self._lock:
            self.load[w] -= 1
            self.progress[w] = max(self.progress[w], time.monotonic())

    def hung(self, timeout: float) -> list[int]:
        """Busy workers with no finished item for `timeout` s (the caller restarts them).

        A reported worker's clock restarts one `timeout` in the future: its restart (process
        start, imports) must not count against the items retried on it.
        """
        now, out = time.monotonic(), []
        with self._lock:
            for w in range(self.n):
                if self.load[w] and now - self.progress[w] > timeout:
                    self.progress[w] = now + timeout
                    out.append(w)
        return out
