"""Math answer checking for grading and RL rewards: `check_answer(predicted, reference)`.

Decides equivalence exact -> numeric within tolerance -> symbolic, in a pool of worker processes
so a pathological answer becomes a "timeout" verdict from any thread or Ray actor. Bad answers
never raise: the verdict carries `error`; only invalid arguments (a negative timeout) raise.
"""
from __future__ import annotations

from fractions import Fraction

from pydantic import BaseModel, ConfigDict

from coder.math.extract import extract_answer
from coder.math.normalize import AnswerParseError, normalize_answer, plain_number, within_tolerance
from coder.math.policy import DEFAULT_POLICY, AnswerPolicy
from coder.math.pool import WorkerFailed, WorkerTimeout, default_pool

# |a - b| <= max(REL_TOL * max(|a|, |b|), ABS_TOL). 1e-6 accepts ~7 significant digits
# (1/3 vs 0.3333333) and rejects 1/3 vs 0.3333. ABS_TOL is 0 so that tiny values such as
# 1/2004! and 1/2006! are still told apart; raise it only for answers of known scale.
DEFAULT_REL_TOL = 1e-6
DEFAULT_ABS_TOL = 0.0
MAX_ANSWER_CHARS = 10_000

__all__ = ["check_answer", "extract_answer", "AnswerVerdict", "AnswerParseError", "AnswerPolicy",
           "DEFAULT_REL_TOL", "DEFAULT_ABS_TOL"]


class AnswerVerdict(BaseModel):
    """How two answers compare. `reason` is one of "exact", "numeric within tol", "symbolic",
    "different: <why>", "timeout", "unparseable" (see `error`), "error" (checker failed, see `error`)."""

    model_config = ConfigDict(frozen=True)

    equivalent: bool
    reason: str
    predicted_parsed: str | None = None
    reference_parsed: str | None = None
    error: str | None = None


def _fast(pred: str, ref: str, rel_tol: float, abs_tol: float) -> AnswerVerdict | None:
    """Verdicts that need no sympy: identical text, or two plain decimal numbers (exact Fractions)."""
    if pred == ref:
        return AnswerVerdict(equivalent=True, reason="exact", predicted_parsed=pred, reference_parsed=ref)
    a, b = plain_number(pred), plain_number(ref)
    if a is None or b is None:
        return None
    shown = dict(predicted_parsed=_show(a), reference_parsed=_show(b))
    if a == b:
        return AnswerVerdict(equivalent=True, reason="exact", **shown)
    if within_tolerance(a, b, rel_tol, abs_tol):
        return AnswerVerdict(equivalent=True, reason="numeric within tol", **shown)
    return AnswerVerdict(equivalent=False, reason="different: values differ beyond tolerance", **shown)


def _show(x: Fraction) -> str:
    return str(x.numerator) if x.denominator == 1 else f"{x.numerator}/{x.denominator}"


def _validate(timeout: float, rel_tol: float, abs_tol: float) -> None:
    if not timeout > 0:
        raise ValueError(f"timeout must be > 0 seconds, got {timeout}")
    if not (rel_tol >= 0 and abs_tol >= 0):
        raise ValueError(f"rel_tol and abs_tol must be >= 0, got rel_tol={rel_tol}, abs_tol={abs_tol}")


def check_answer(predicted: str, reference: str, *, timeout: float = 5.0,
                 rel_tol: float = DEFAULT_REL_TOL, abs_tol: float = DEFAULT_ABS_TOL,
                 policy: AnswerPolicy = DEFAULT_POLICY) -> AnswerVerdict:
    """Whether `predicted` is equivalent to `reference` under `policy`; safe from any thread; never
    raises on bad answers."""
    _validate(timeout, rel_tol, abs_tol)
    if not isinstance(policy, AnswerPolicy):
        raise TypeError(f"policy must be an AnswerPolicy, got {type(policy).__name__}")
    for name, text in (("predicted", predicted), ("reference", reference)):
        if text is None or len(str(text)) > MAX_ANSWER_CHARS:
            why = "is missing" if text is None else f"is longer than {MAX_ANSWER_CHARS} characters"
            return AnswerVerdict(equivalent=False, reason="unparseable", error=f"the {name} answer {why}")
    pred, ref = normalize_answer(str(predicted), policy), normalize_answer(str(reference), policy)
    if pred and ref:
        fast = _fast(pred, ref, rel_tol, abs_tol)
        if fast is not None:
            return fast
    request = {"predicted": str(predicted), "reference": str(reference), "rel_tol": rel_tol, "abs_tol": abs_tol,
               "policy": policy.model_dump()}
    try:
        return AnswerVerdict(**default_pool().call(request, timeout))
    except WorkerTimeout:
        return AnswerVerdict(equivalent=False, reason="timeout",
                             error=f"not decided within {timeout:g} s (counted as not equivalent)")
    except (WorkerFailed, OSError) as exc:  # OSError: could not start a worker (process limit ...)
        return AnswerVerdict(equivalent=False, reason="error", error=f"answer checker failed: {exc}")
