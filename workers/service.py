"""The job service's HTTP API (FastAPI; OpenAPI docs at /docs): proofs, gradings, math checks, completions.

`create_app(config)` builds the app; its lifespan opens the SQLite store, starts (or borrows) the
worker pool and resumes unfinished jobs. Errors are JSON `{"detail": "..."}` naming the culprit.
"""
from __future__ import annotations

import hmac
import json
import logging
import sys
import time
import uuid
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Optional, Union

from fastapi import Depends, FastAPI, Header, HTTPException, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from pydantic import BaseModel, Field, field_validator

from .config import ServiceConfig
from .http_edge import BodyLimit, ErrorBody, allowed_methods, error_responses
from .jobs import JobStore
from .registry import KINDS, ROUTES
from .requests import GradingRequest, MathCheckRequest, ProofRequest, _no_bool_numbers
from .runner import JobRunner

log = logging.getLogger(__name__)
SUBMIT_RESPONSES = {200: {"description": "an earlier job with the same Idempotency-Key (re-attached)"},
                    **error_responses(401, 404, 422)}
MATH_RESPONSES = {200: {"description": "done within wait_s: the job with its results"},
                  202: {"description": "not done within wait_s: the job; poll GET /v1/math/checks/{id}"},
                  **error_responses(401, 404, 422)}
JOB_ERRORS = error_responses(401, 404, 422)
NDJSON = {"description": "one JSON object per finished item, in order",
          "content": {"application/x-ndjson": {"schema": {"type": "string"}}}}
IDEMPOTENCY_KEY = Header(None, max_length=128, description=(
    "names the job's input (e.g. a hash of the body): a queued, running or completed job submitted with "
    "the same key is returned (200) instead of a new job, so a rerun re-attaches to it"))


class CompletionRequest(BaseModel):
    """OpenAI /v1/completions (text) request; unknown OpenAI fields are accepted and ignored."""

    _numbers = field_validator("*", mode="before")(classmethod(_no_bool_numbers))

    model: Optional[str] = None
    prompt: Union[str, list[str]]
    max_tokens: int = Field(16, ge=1, le=32768)
    temperature: float = Field(1.0, ge=0, le=5)
    top_p: float = Field(1.0, gt=0, le=1)
    top_k: int = Field(0, ge=0)
    n: int = Field(1, ge=1, le=64)
    stop: Optional[Union[str, list[str]]] = None
    # JSON's safe integers: a client's double can hold every one of them exactly
    seed: Optional[int] = Field(None, ge=-(2**53 - 1), le=2**53 - 1)


def create_app(config: ServiceConfig | None = None, pool=None) -> FastAPI:
    """The service app; pass `pool` to share a WorkerPool, else one is made on startup (Ray joined per config)."""
    config = config or ServiceConfig()
    state: dict = {}
    app = FastAPI(title="proofcode job service", version="0.1.0", lifespan=_lifespan(config, pool, state),
                  description="Prove Lean 4 theorems, grade code and math answers; results as jsonl.",
                  responses=error_responses(413))
    app.add_middleware(BodyLimit, max_bytes=config.max_body_bytes)
    app.state.proofcode = state

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        headers = dict(exc.headers or {})
        if exc.status_code == 400 and exc.detail == "There was an error parsing the body":  # e.g. not UTF-8
            return JSONResponse(status_code=422, content={"detail": "invalid request: the body is not JSON "
                                                                     "(UTF-8); send a JSON object"})
        if exc.status_code == 405:  # name every method served at this path, not the first route's
            headers["Allow"] = ", ".join(allowed_methods(app, request.scope))
        return JSONResponse(status_code=exc.status_code, content={"detail": str(exc.detail)}, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_body(request: Request, exc: RequestValidationError):
        errors = jsonable_encoder(exc.errors(), custom_encoder={Exception: str})
        parts = [f"{'.'.join(str(x) for x in e['loc'] if x != 'body') or 'body'}: {e['msg']}" for e in errors[:5]]
        return JSONResponse(status_code=422, content={"detail": "invalid request: " + "; ".join(parts), "errors": errors})

    @app.get("/healthz", tags=["service"])
    def healthz() -> dict:
        runner: JobRunner = state["runner"]
        pool, workers = state["pool"], {}
        if hasattr(pool, "status"):
            workers = pool.status()
        waiting = [f"{name}: {g['waiting']}" for name, g in workers.items() if g.get("waiting")]
        return {"status": "degraded" if waiting else "ok", "uptime_s": round(time.time() - state["started"], 1),
                "active_jobs": runner.active(), "workers": workers, "waiting": waiting}

    auth = _auth(config.token)
    _add_job_routes(app, state, auth, config)
    _add_completions_route(app, state, auth)
    return app


def _lifespan(config: ServiceConfig, pool, state: dict):
    """Startup: store, pool (own unless given), runner, resume; shutdown in reverse, leaving jobs resumable."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        store = JobStore(config.db)
        the_pool = pool
        if pool is None:
            from .pool import WorkerPool, init_ray

            init_ray(config.ray_address, config.pool)
            the_pool = WorkerPool(config.pool)
        runner = JobRunner(store, the_pool, config.max_concurrent_jobs)
        state.update(store=store, pool=the_pool, runner=runner, started=time.time())
        _apply_retention(state, config)
        runner.resume()
        try:
            yield
        finally:
            runner.shutdown(wait=True)
            if pool is None:
                the_pool.shutdown()
            left = len(store.unfinished())
            store.close()
            print(f"proofcode service stopped; {left} unfinished job(s) resume on the next start", file=sys.stderr)

    return lifespan


def _auth(token: str | None):
    """A dependency: 401 unless the request carries `Authorization: Bearer <token>` (no-op without a token).

    With a token it also puts the bearer scheme in the OpenAPI schema (HTTPBearer, which raises nothing itself).
    """
    if not token:
        return lambda: None
    from fastapi.security import HTTPBearer

    bearer = HTTPBearer(auto_error=False, description="the service's token (--token / PROOFCODE_TOKEN)")

    def auth(request: Request, _scheme=Depends(bearer)) -> None:
        header = request.headers.get("authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
            what = "missing" if not header else "wrong"
            raise HTTPException(401, f"{what} bearer token: send 'Authorization: Bearer <token>' "
                                     "with the service's token", headers={"WWW-Authenticate": "Bearer"})

    return auth


def _add_completions_route(app: FastAPI, state: dict, auth) -> None:
    @app.post("/v1/completions", tags=["model"], dependencies=[Depends(auth)], responses=error_responses(401, 404, 422, 503))
    def completions(req: CompletionRequest) -> dict:
        """OpenAI-compatible text completion from the pool's model worker (batched with other callers)."""
        prompts = [req.prompt] if isinstance(req.prompt, str) else list(req.prompt)
        if not prompts:
            raise HTTPException(422, "invalid request: prompt: give at least one prompt")
        pool_cfg = getattr(state["pool"], "config", None)
        if pool_cfg is not None and not pool_cfg.model.enabled:
            raise HTTPException(404, "this service has no model worker (pool.model.enabled is false); "
                                     "enable it in the service's config")
        stop = [req.stop] if isinstance(req.stop, str) else list(req.stop or [])
        params = dict(max_tokens=req.max_tokens, temperature=req.temperature, top_p=req.top_p,
                      top_k=req.top_k, stop=stop, seed=req.seed)
        try:
            outs = state["pool"].complete([p for p in prompts for _ in range(req.n)], params)
        except Exception as exc:
            raise HTTPException(503, f"the model worker could not generate: {_cause(exc)}") from None
        choices = [{"index": i, "text": o["text"], "finish_reason": o.get("finish_reason") or "stop",
                    "logprobs": None} for i, o in enumerate(outs)]
        completion_tokens = sum(o.get("completion_tokens") or 0 for o in outs)
        prompt_tokens = sum(o.get("prompt_tokens") or 0 for o in outs[:: req.n])
        return {"id": f"cmpl-{uuid.uuid4().hex[:24]}", "object": "text_completion", "created": int(time.time()),
                "model": req.model or "proofcode", "choices": choices,
                "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                          "total_tokens": prompt_tokens + completion_tokens}}


def _cause(exc: BaseException) -> str:
    # Ray wraps the worker's exception; users want the innermost message.
    cause = getattr(exc, "cause", None) or exc.__cause__ or exc
    return f"{type(cause).__name__}: {cause}"


def _add_job_routes(app: FastAPI, state: dict, auth, config: ServiceConfig) -> None:
    """POST/GET/cancel/results for each job kind."""
    dep = [Depends(auth)]

    def create(kind: str, items: list[dict], params: dict, key: str | None = None):
        """Store and start a job; with an Idempotency-Key that names an earlier job, that job (200) instead."""
        if key and (existing := state["store"].find(kind, key)):
            return JSONResponse(status_code=200, content={**state["store"].get(existing).to_dict(), "attached": True})
        pool_cfg = getattr(state["pool"], "config", None)
        field = f"{KINDS[kind].group}_workers"
        if pool_cfg is not None and getattr(pool_cfg, field) == 0:
            raise HTTPException(404, f"this service runs no {field.split('_')[0]} workers (pool.{field} is 0); "
                                     f"restart it with --{field.replace('_', '-')} N")
        if len(items) > config.max_items_per_job:
            raise HTTPException(413, f"{len(items)} items exceed max_items_per_job={config.max_items_per_job}; split the job")
        _apply_retention(state, config)
        job_id = state["store"].create(kind, items, params, key)
        state["runner"].submit(job_id)
        return state["store"].get(job_id).to_dict()

    def job_or_404(kind: str, job_id: str):
        job = state["store"].get(job_id)
        if job is None or job.kind != kind:
            raise HTTPException(404, f"no {kind} job with id {job_id!r}")
        return job

    @app.post("/v1/gradings", status_code=202, tags=["gradings"], dependencies=dep, responses=SUBMIT_RESPONSES)
    def submit_grading(req: GradingRequest, idempotency_key: Optional[str] = IDEMPOTENCY_KEY) -> dict:
        params = KINDS["grading"].params(req)
        _check_task_ids(req, params, config)
        return create("grading", [s.model_dump(exclude_none=True) for s in req.samples], params, idempotency_key)

    @app.post("/v1/proofs", status_code=202, tags=["proofs"], dependencies=dep, responses=SUBMIT_RESPONSES)
    def submit_proofs(req: ProofRequest, idempotency_key: Optional[str] = IDEMPOTENCY_KEY) -> dict:
        pool_cfg = getattr(state["pool"], "config", None)
        if req.project and req.project != getattr(pool_cfg, "lean_project", None):
            server_path(req.project, config, "project")
        return create("proof", [t.model_dump() for t in req.theorems], KINDS["proof"].params(req), idempotency_key)

    @app.post("/v1/math/check", tags=["math"], dependencies=dep, responses=MATH_RESPONSES)
    def check_math(req: MathCheckRequest):
        job = create("math", [p.model_dump() for p in req.items], KINDS["math"].params(req))
        done = state["runner"].wait(job["id"], req.wait_s) if req.wait_s else False
        job = state["store"].get(job["id"]).to_dict()
        if done:
            job["results"] = list(state["store"].results(job["id"]))
        return JSONResponse(status_code=200 if done else 202, content=job)

    @app.get("/v1/jobs", tags=["jobs"], dependencies=dep, responses=error_responses(401, 422))
    def list_jobs(limit: int = Query(50, ge=1, le=1000)) -> list[dict]:
        """The newest jobs of every kind, newest first."""
        return [j.to_dict() for j in state["store"].list(limit)]

    for kind, route in ROUTES.items():
        _add_kind_routes(app, state, dep, kind, route, job_or_404)


def _add_kind_routes(app: FastAPI, state: dict, dep, kind: str, route: str, job_or_404) -> None:
    tag = route.split("/")[0]

    @app.get(f"/v1/{route}/{{job_id}}", tags=[tag], dependencies=dep, name=f"get_{kind}", responses=JOB_ERRORS)
    def get_job(job_id: str) -> dict:
        job = job_or_404(kind, job_id).to_dict()
        waiting = getattr(state["pool"], "waiting", None)
        if job["status"] in ("queued", "running") and waiting is not None:
            job["waiting"] = waiting(kind)  # why it is slow or not moving: workers restarting or unplaced
        return job

    @app.get(f"/v1/{route}/{{job_id}}/results", tags=[tag], dependencies=dep, name=f"{kind}_results",
             response_class=StreamingResponse, responses={**JOB_ERRORS, 200: NDJSON})
    def results(job_id: str):
        job_or_404(kind, job_id)
        lines = (json.dumps(row) + "\n" for row in state["store"].results(job_id))
        return StreamingResponse(lines, media_type="application/x-ndjson")

    def cancel(job_id: str) -> dict:
        """Cancel the job: no new items start; finished ones stay."""
        job_or_404(kind, job_id)
        return state["runner"].cancel(job_id).to_dict()

    def delete(job_id: str) -> dict:
        """Cancel an active job; delete a finished (completed, cancelled, failed) one with its results."""
        job = job_or_404(kind, job_id)
        if job.status in ("queued", "running"):
            return state["runner"].cancel(job_id).to_dict()
        state["store"].delete(job_id)
        return {"id": job_id, "deleted": True}

    app.delete(f"/v1/{route}/{{job_id}}", tags=[tag], dependencies=dep, name=f"delete_{kind}",
               responses=JOB_ERRORS)(delete)
    app.post(f"/v1/{route}/{{job_id}}/cancel", tags=[tag], dependencies=dep, name=f"cancel_{kind}_post",
             responses=JOB_ERRORS)(cancel)


def _apply_retention(state: dict, config: ServiceConfig, every_s: float = 60.0) -> None:
    """Delete finished jobs older than `retention_days` (at most once a minute)."""
    if config.retention_days is None or time.time() - state.get("purged", 0.0) < every_s:
        return
    state["purged"] = time.time()
    n = state["store"].purge(config.retention_days * 86400)
    if n:
        log.info("deleted %d finished job(s) older than retention_days=%g", n, config.retention_days)


NAMED_PROBLEM_SETS = ("humaneval",)  # packaged with coder: no server path involved


def server_path(value: str, config: ServiceConfig, field: str) -> Path:
    """`value` as a path on the server, if reading server paths is on and it lies under a configured directory.

    422 otherwise; the message names only what the client sent, never what the server has.
    """
    if not config.server_path_dirs:
        raise HTTPException(422, f"invalid request: {field}: naming files on the server is off (the service's "
                                 "server_path_dirs is empty); send the content inline")
    path = Path(value).expanduser().resolve()
    for root in config.server_path_dirs:
        if path.is_relative_to(Path(root).expanduser().resolve()):
            return path
    raise HTTPException(422, f"invalid request: {field}: {value!r} is not under the service's server_path_dirs")


def _check_task_ids(req: GradingRequest, params: dict, config: ServiceConfig) -> None:
    """422 naming the first sample whose task_id the problem set lacks (or the unloadable problem set)."""
    from .handlers import load_problem_source

    named = isinstance(req.problems, str) and req.problems.lower() in NAMED_PROBLEM_SETS
    if isinstance(req.problems, str) and not named:
        server_path(req.problems, config, "problems")
    what = "the inline problems" if isinstance(req.problems, list) else repr(req.problems)
    try:
        problems = load_problem_source(params)
    except Exception as exc:
        # A server file's parse errors could quote it: for those, say only what kind of error it was.
        why = str(exc) if isinstance(req.problems, list) or named else (
            "not found" if isinstance(exc, FileNotFoundError) else f"not a valid problems file ({type(exc).__name__})")
        raise HTTPException(422, f"invalid request: problems: cannot load {what} on the server: {why}") from None
    for i, s in enumerate(req.samples):
        if s.task_id not in problems:
            raise HTTPException(422, f"invalid request: samples.{i}.task_id: {s.task_id!r} is not in {what}")
