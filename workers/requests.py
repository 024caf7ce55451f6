"""The HTTP request body of each job kind (`workers.registry` names them): the packages' own models
(coder.GradingJob, prover.SearchConfig, ...) inside, so the OpenAPI schema shows every field."""
from __future__ import annotations

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
