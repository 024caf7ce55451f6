"""Ray actors, the worker pool, the job service and the RL loop.

Ray is imported lazily, inside the modules that need it, so `proofcode grade` and friends start fast.

Public API:
    init_ray(address=None); pool = WorkerPool(PoolConfig(coder_workers=2))
    pool.run("grading", enumerate(items), params, on_result)      # each item's result exactly once
    app = create_app(ServiceConfig(db="jobs.sqlite"))              # FastAPI; `proofcode serve`
    client = ServiceClient("http://127.0.0.1:8000"); client.submit_grading(samples)
"""
from __future__ import annotations

_EXPORTS = {
    "ServiceConfig": ".config",
    "PoolConfig": ".config",
    "ModelWorkerConfig": ".config",
    "BackendConfig": ".config",
    "ActorResources": ".config",
    "load_config": ".config",
    "JobStore": ".jobs",
    "JobRunner": ".runner",
    "WorkerPool": ".pool",
    "LocalPool": ".local",
    "init_ray": ".pool",
    "SamplingParams": ".backends",
    "CoreModelBackend": ".backends",
    "OpenAIBackend": ".backends",
    "make_backend": ".backends",
    "Batcher": ".batching",
    "create_app": ".service",
    "ServiceClient": ".client",
    "ServiceError": ".client",
    "run_elsewhere": ".executors",
    "ServerExecutor": ".executors",
    "PoolExecutor": ".executors",
}


from proofcode_common import lazy_exports  # noqa: E402

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())


__all__ = sorted(_EXPORTS)
