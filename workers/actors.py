"""Ray actors: thin shells over the plain handlers in `workers.handlers` and `workers.batching`.

Restarts and task retries are set where the pool creates them (`workers.pool`), from PoolConfig.
"""
from __future__ import annotations

import os

import ray

from .handlers import CoderHandler, ProverHandler
from .registry import run_item


class _Worker:
    """What every item worker answers: its pid, the health probe, and a batch of one job kind's items."""

    group = ""  # the registry's worker group this worker runs items for
    handler = None

    def pid(self) -> int:
        return os.getpid()

    def ping(self) -> tuple[int, str]:
        """(pid, Ray node id) of this actor: the pool's health probe, and where the worker landed."""
        return os.getpid(), ray.get_runtime_context().get_node_id()

    def run_batch(self, kind: str, items: list[dict], params: dict) -> list[dict]:
        return [run_item(self.handler, self.group, kind, item, params) for item in items]


@ray.remote
class CoderWorker(_Worker):
    """Grades code and checks math answers; each item runs in `coder`'s sandbox."""

    group = "coder"

    def __init__(self):
        os.environ.setdefault("OMP_NUM_THREADS", "1")
        self.handler = CoderHandler()


@ray.remote
class ProverWorker(_Worker):
    """Owns Lean environments; asks the model worker for tactics/proofs."""

    group = "prover"

    def __init__(self, lean_project: str | None, model=None, repl_pool_size: int = 1,
                 repl_command: list[str] | None = None, max_projects: int = 2):
        def generate(prompts: list[str], params: dict) -> list[dict]:
            return ray.get(model.generate.remote(prompts, params))

        self.handler = ProverHandler(lean_project, generate if model is not None else None, repl_pool_size,
                                     repl_command, max_projects)


@ray.remote
class ModelWorker:
    """Hosts one generation backend and batches concurrent callers' requests (a threaded actor).

    The model loads on the first request, so a bad checkpoint is that request's clear error
    (and the next request's), not a dead actor that Ray keeps restarting.
    """

    def __init__(self, model_config: dict):
        import threading

        from .config import ModelWorkerConfig

        self.cfg = ModelWorkerConfig.model_validate(model_config)
        self._lock = threading.Lock()
        self.backend = None
        self.batcher = None

    def _ready(self):
        with self._lock:
            if self.batcher is None:
                from .backends import make_backend
                from .batching import Batcher

                self.backend = make_backend(self.cfg.backend)
                self.batcher = Batcher(self.backend, self.cfg.max_batch_size, self.cfg.batch_window_s)
        return self.batcher

    def pid(self) -> int:
        return os.getpid()

    def info(self) -> dict:
        batcher = self._ready()
        return {"model": getattr(self.backend, "name", "model"), "stats": dict(batcher.stats)}

    def generate(self, prompts: list[str], params: dict) -> list[dict]:
        from .backends import SamplingParams

        return self._ready().submit(prompts, SamplingParams.model_validate(params))
