"""`AnswerPolicy`: the choices where reasonable graders differ, each with a documented default."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict


class AnswerPolicy(BaseModel):
    """How `check_answer` reads and compares answers where conventions differ (see docs/coder.md)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # "auto": a comma that cannot be a thousands separator and has 2+ digits after it, or a single
    # leading 0 before it, is a decimal comma (1,22 / 0,111 / 1000,99); 1,234 stays 1234 and 1,2
    # stays a list. "always": any digit,digit comma with no space is decimal. "never": commas separate items.
    decimal_comma: Literal["auto", "always", "never"] = "auto"
    # "1; 2; 3" and "(1; 2)" separate items like commas (locales that write decimal commas do this).
    semicolon_separates: bool = True
    # A tuple (1, 2) equals the set {1, 2}; by default they differ (order is part of a tuple).
    tuple_matches_set: bool = False
    # A named left side is dropped: "AB = 4", "|AB| = 4", "f(x) = 4", "A:B = 4", "x_1 = 4" all match 4.
    # When False only a single-letter variable ("x = 4") is dropped.
    named_lhs_matches_value: bool = True
    # "both": x >= 5 equals [5, oo) either way round. "reference_inequality" (default): an interval
    # prediction matches an inequality reference, but an inequality prediction does not match an
    # interval reference (the question asked for interval notation). "never": they always differ.
    inequality_vs_interval: Literal["both", "reference_inequality", "never"] = "reference_inequality"
    # A bare number matches a percentage with the same digits ("28" for "28%"), as well as 0.28.
    percent_matches_bare: bool = True


DEFAULT_POLICY = AnswerPolicy()
