"""Ray actors: thin shells over the plain handlers in `workers.handlers` and `workers.batching`.

Restarts and task retries are set where the pool creates them (`workers.pool`), from PoolConfig.
"""
from __future__ import annotations

import os

import ray

from .handlers import CoderHandler, ProverHandler


@ray.remote
class CoderWorker:
    """Grades code and checks math answers; each item runs in `coder`'s sandbox."""

    def __init__(self):
        os.environ.setdefault("OMP_NUM_THREADS", "1")
        self.handler = CoderHandler()

    def pid(self) -> int:
        return os.getpid()

    def run(self, kind: str, item: dict, params: dict) -> dict:
        if kind == "grading":
            return self.handler.grade(item, params)
        if kind == "math":
            return self.handler.check_math(item, params)
        return {"status": "error", "passed": False, "detail": f"coder worker cannot run {kind!r} items"}


@ray.remote
class ProverWorker:
    """Owns a Lean environment; asks the model worker for tactics/proofs."""

    def __init__(self, lean_project: str | None, model=None):
        def generate(prompts: list[str], params: dict) -> list[dict]:
            return ray.get(model.generate.remote(prompts, params))

        self.handler = ProverHandler(lean_project, generate if model is not None else None)

    def pid(self) -> int:
        return os.getpid()

    def run(self, kind: str, item: dict, params: dict) -> dict:
        if kind != "proof":
            return {"status": "error", "passed": False, "detail": f"prover worker cannot run {kind!r} items"}
        return self.handler.prove(item, params)


@ray.remote
class ModelWorker:
    """Hosts one generation backend and batches concurrent callers' requests (a threaded actor)."""

    def __init__(self, model_config: dict):
        from .backends import make_backend
        from .batching import Batcher
        from .config import ModelWorkerConfig

        cfg = ModelWorkerConfig.model_validate(model_config)
        self.backend = make_backend(cfg.backend)
        self.batcher = Batcher(self.backend, cfg.max_batch_size, cfg.batch_window_s)

    def pid(self) -> int:
        return os.getpid()

    def info(self) -> dict:
        return {"model": getattr(self.backend, "name", "model"), "stats": dict(self.batcher.stats)}

    def generate(self, prompts: list[str], params: dict) -> list[dict]:
        from .backends import SamplingParams

        return self.batcher.submit(prompts, SamplingParams.model_validate(params))
