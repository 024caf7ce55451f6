"""The job kinds: for each, its HTTP request, the worker group that runs its items, and the handler method.

The HTTP API (`service`), the store (`jobs`), the pool and its actors, the in-process pool (`local`) and
the client all read `KINDS`; a new kind is one entry here plus one handler method (docs/architecture.md).
The request bodies are the packages' own models (coder.GradingJob, prover.SearchConfig, ...), so the
OpenAPI schema shows every field.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Literal, Optional

from coder import AnswerPolicy, GradingJob, Sample
from prover import SearchConfig
from prover.generators import GeneratorConfig
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator, model_validator


def _clash(annotation, value) -> str | None:
    """JSON's true/false are not numbers, nor 0/1 booleans (pydantic would convert either way)."""
    if isinstance(value, bool) and ("int" in str(annotation) or "float" in str(annotation)):
        return "must be a number, not a boolean"
    if annotation is bool and value is not None and not isinstance(value, bool):
        return "must be a boolean (true or false)"
    return None


def _no_bool_numbers(cls, value, info):
    why = _clash(cls.model_fields[info.field_name].annotation, value)
    if why:
        raise ValueError(why)
    return value


def _clash_in(model: type[BaseModel], data, where: str = "") -> str | None:
    """The first nested package-model field (search.budget_seconds, ...) given the wrong JSON type, and why."""
    if not isinstance(data, dict):
        return None
    for name, field in model.model_fields.items():
        if name not in data:
            continue
        value, annotation = data[name], field.annotation
        why = _clash(annotation, value)
        if why and where:
            return f"{where}{name}: {why}"
        if isinstance(annotation, type) and issubclass(annotation, BaseModel) and not issubclass(annotation, _Body):
            found = _clash_in(annotation, value, f"{where}{name}.")
            if found:
                return found
    return None


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")

    _numbers = field_validator("*", mode="before")(classmethod(_no_bool_numbers))

    @model_validator(mode="before")
    @classmethod
    def _nested_numbers(cls, data):
        found = _clash_in(cls, data)
        if found:
            raise ValueError(found)
        return data


class GradingRequest(GradingJob, _Body):
    """Grade code samples against a problem set the server can load ("humaneval", a server path, or rows inline)."""

    samples: list[Sample] = Field(min_length=1)


class TheoremIn(_Body):
    """prover.Theorem on the wire."""

    name: str
    statement: str = Field(description="the theorem text up to and including `:=`")
    header: str = ""
    informal_prefix: str = ""


class ProofRequest(_Body):
    """Prove theorems: prover.search with these settings, in the service's Lean project."""

    theorems: list[TheoremIn] = Field(min_length=1)
    search: SearchConfig = Field(default_factory=SearchConfig)
    generator: Literal["model", "builtin"] = Field("model", description="the pool's model worker, or no model")
    generation: GeneratorConfig = Field(default_factory=GeneratorConfig)
    project: Optional[str] = Field(None, description="Lean project dir on the server (default: pool.lean_project)")


class AnswerPair(_Body):
    # The short names, or the ones `coder.check_answer` and `proofcode check-answer` use.
    pred: str = Field(validation_alias=AliasChoices("pred", "predicted"))
    ref: str = Field(validation_alias=AliasChoices("ref", "reference"))


class MathCheckRequest(_Body):
    """Compare answer pairs with coder.check_answer."""

    items: list[AnswerPair] = Field(min_length=1)
    timeout: float = Field(5.0, gt=0, le=120, description="seconds per comparison (sympy)")
    policy: AnswerPolicy = Field(default_factory=AnswerPolicy)
    wait_s: float = Field(30.0, ge=0, le=600, description="wait this long for the results inline")


@dataclass(frozen=True)
class JobKind:
    """One kind of job: `items` of the request run one by one through `group`'s `handler` method."""

    name: str  # the store's and pool's name for it
    route: str  # under /v1/
    request: type[BaseModel]
    items: str  # the request field holding the items
    group: Literal["coder", "prover"]  # the workers that run its items
    handler: str  # the method of that group's handler: handler(item: dict, params: dict) -> dict
    noun: str  # what an item is, for messages

    def params(self, request: BaseModel) -> dict:
        """The job's parameters as stored: the request without its items (JSON-ready)."""
        params = request.model_dump(mode="json", exclude={self.items, "wait_s"})
        if isinstance(params.get("problems"), list):  # inline problem rows: the workers cache them by this name
            params["problems_digest"] = hashlib.sha256(json.dumps(params["problems"], sort_keys=True).encode()).hexdigest()
        return params


KINDS: dict[str, JobKind] = {k.name: k for k in (
    JobKind("grading", "gradings", GradingRequest, "samples", "coder", "grade", "samples"),
    JobKind("proof", "proofs", ProofRequest, "theorems", "prover", "prove", "theorems"),
    JobKind("math", "math/checks", MathCheckRequest, "items", "coder", "check_math", "pairs"),
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
