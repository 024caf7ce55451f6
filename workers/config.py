"""One pydantic config for the pool and the job service: validated at the CLI edge, passed down.

Every field has a default that runs on a laptop; `load_config(path)` reads a JSON file with the
same shape (unknown keys are errors, so a typo names itself).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ActorResources(_Strict):
    """What Ray reserves for one actor."""

    num_cpus: float = Field(1.0, ge=0)
    num_gpus: float = Field(0.0, ge=0)
    memory_bytes: Optional[int] = Field(None, ge=0, description="Ray memory reservation; None = no reservation")

    def ray_options(self) -> dict:
        opts: dict = {"num_cpus": self.num_cpus, "num_gpus": self.num_gpus}
        if self.memory_bytes:
            opts["memory"] = self.memory_bytes
        return opts


class BackendConfig(_Strict):
    """Where completions come from: the built-in core model, or an OpenAI-compatible endpoint."""

    kind: Literal["core", "openai"] = "core"
    checkpoint: Optional[str] = Field(None, description="core: checkpoint dir; None = the embedded tiny model")
    device: str = Field("cpu", description="core: torch device, e.g. cpu or cuda")
    torch_threads: int = Field(1, ge=1, description="core: torch.set_num_threads in the model worker")
    url: Optional[str] = Field(None, description="openai: base URL, e.g. http://127.0.0.1:8000/v1")
    model: str = Field("default", description="openai: the model name sent with each request")
    api_key: Optional[str] = Field(None, description="openai: bearer token for the endpoint")
    request_timeout_s: float = Field(300.0, gt=0)


class ModelWorkerConfig(_Strict):
    """The model worker batches generation requests from many callers into one forward pass."""

    enabled: bool = True
    backend: BackendConfig = BackendConfig()
    max_batch_size: int = Field(8, ge=1)
    batch_window_s: float = Field(0.02, ge=0, description="how long to wait for more requests to batch")
    max_concurrency: int = Field(32, ge=1, description="callers served at once (they wait for their batch)")
    resources: ActorResources = ActorResources(num_cpus=1)


class PoolConfig(_Strict):
    """Pool sizes, per-actor resources and fault-tolerance knobs."""

    coder_workers: int = Field(2, ge=0)
    prover_workers: int = Field(1, ge=0)
    coder_resources: ActorResources = ActorResources(num_cpus=1)
    prover_resources: ActorResources = ActorResources(num_cpus=1)
    model: ModelWorkerConfig = ModelWorkerConfig()
    max_actor_restarts: int = Field(-1, ge=-1, description="-1 = restart a dead worker forever")
    max_item_attempts: int = Field(3, ge=1, description="an item whose worker dies this often while running it (on a "
                                   "live node) is reported as not graded; lost nodes and queued items use no attempt")
    in_flight_per_worker: int = Field(2, ge=1, description="tasks queued at each worker (backpressure)")
    items_per_task: int = Field(8, ge=1, description="items one Ray task carries once a job is under way (a job "
                                "starts with one per task): fewer tasks, less GCS growth and overhead")
    item_timeout_s: float = Field(900.0, gt=0, description="a worker busy this long on one item is restarted")
    stall_timeout_s: float = Field(1800.0, gt=0, description="a job whose workers finish no item for this long "
                                   "fails, naming why (e.g. workers waiting for placement)")
    lean_project: Optional[str] = Field(None, description="Lean project dir for prover workers (REPL backend)")
    repl_pool_size: int = Field(1, ge=1, description="REPL processes each prover worker keeps alive")
    max_projects: int = Field(2, ge=1, description="Lean projects a prover worker keeps an environment for "
                              "(least recently used idle ones close)")
    repl_command: Optional[list[str]] = Field(None, description="command starting the REPL (default: the project's)")

    def cpus_needed(self) -> float:
        """Logical CPUs Ray must have for every actor of this pool."""
        total = self.coder_workers * self.coder_resources.num_cpus
        total += self.prover_workers * self.prover_resources.num_cpus
        return total + (self.model.resources.num_cpus if self.model.enabled else 0)

    def gpus_needed(self) -> float:
        total = self.coder_workers * self.coder_resources.num_gpus + self.prover_workers * self.prover_resources.num_gpus
        return total + (self.model.resources.num_gpus if self.model.enabled else 0)


class ServiceConfig(_Strict):
    """The job service: HTTP edge, SQLite store, and the pool behind it."""

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    db: str = Field("proofcode-jobs.sqlite", description="SQLite job database path")
    token: Optional[str] = Field(None, description="bearer token required on /v1/*; None = open")
    max_body_bytes: int = Field(32 * 1024 * 1024, ge=1024)
    max_items_per_job: int = Field(100_000, ge=1)
    max_concurrent_jobs: int = Field(4, ge=1)
    ray_address: Optional[str] = Field(None, description="None = start a local Ray; 'auto' or host:port joins one")
    server_path_dirs: list[str] = Field(default_factory=list, description="directories under which a request may "
                                        "name files on the server (problems files, Lean projects); empty = none")
    retention_days: Optional[float] = Field(None, gt=0, description="finished jobs older than this are deleted "
                                            "(checked at start and on each new job); None = keep them")
    pool: PoolConfig = PoolConfig()


def load_config(path: str | Path | None, **overrides) -> ServiceConfig:
    """Read a ServiceConfig from a JSON file (or defaults when `path` is None); apply non-None overrides."""
    data: dict = {}
    if path:
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"config file {p} not found")
        try:
            data = json.loads(p.read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(f"config file {p} is not valid JSON: {exc}") from None
    data.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return ServiceConfig.model_validate(data)
    except ValidationError as exc:
        where = f"config file {path}" if path else "config"
        raise ValueError(f"{where}: {_first_errors(exc)}") from None


def _first_errors(exc: ValidationError, limit: int = 3) -> str:
    parts = []
    for err in exc.errors()[:limit]:
        loc = ".".join(str(x) for x in err["loc"]) or "(root)"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)
