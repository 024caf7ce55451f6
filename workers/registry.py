"""The job kinds: for each, its HTTP request, the worker group that runs its items, and the handler method.

The HTTP API (`service`), the store (`jobs`), the pool and its actors, the in-process pool (`local`),
the executors and the client all read `KINDS`; a new kind is one entry here, its request model in
`workers.requests` and one handler method (docs/architecture.md). Light on purpose: actors import it,
and the request models (coder, prover) load only where a request is built or read.
"""
from __future__ import annotations

import hashlib
import importlib
import json
from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class JobKind:
    """One kind of job: `items` of the request run one by one through `group`'s `handler` method."""

    name: str  # the store's and pool's name for it
    route: str  # under /v1/
    request_model: str  # its class in workers.requests
    items: str  # the request field holding the items
    group: Literal["coder", "prover"]  # the workers that run its items
    handler: str  # the method of that group's handler: handler(item: dict, params: dict) -> dict
    noun: str  # what an item is, for messages

    @property
    def request(self):
        """The pydantic model of this kind's HTTP request body."""
        return getattr(importlib.import_module(".requests", __package__), self.request_model)

    def params(self, request) -> dict:
        """The job's parameters as stored: the request without its items (JSON-ready)."""
        params = request.model_dump(mode="json", exclude={self.items, "wait_s"})
        if isinstance(params.get("problems"), list):  # inline problem rows: the workers cache them by this name
            params["problems_digest"] = hashlib.sha256(json.dumps(params["problems"], sort_keys=True).encode()).hexdigest()
        return params


KINDS: dict[str, JobKind] = {k.name: k for k in (
    JobKind("grading", "gradings", "GradingRequest", "samples", "coder", "grade", "samples"),
    JobKind("proof", "proofs", "ProofRequest", "theorems", "prover", "prove", "theorems"),
    JobKind("math", "math/checks", "MathCheckRequest", "items", "coder", "check_math", "pairs"),
)}
ROUTES = {name: kind.route for name, kind in KINDS.items()}


def kind_of(name: str) -> JobKind:
    """The registered kind `name`; ValueError naming the known ones otherwise."""
    if name not in KINDS:
        raise ValueError(f"unknown job kind {name!r}; expected one of {sorted(KINDS)}")
    return KINDS[name]


def run_item(handler, group: str, kind: str, item: dict, params: dict) -> dict:
    """Run one item of a `kind` job on `handler` (a `group` worker's); an error verdict if it is not that group's."""
    job = KINDS.get(kind)
    if job is None or job.group != group:
        return {"status": "error", "passed": False, "detail": f"{group} worker cannot run {kind!r} items"}
    return getattr(handler, job.handler)(item, params)
