"""Search configuration, result, budget accounting and the final-check gate shared by all searches."""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Literal

from pydantic import BaseModel, Field

from ..protocol import ProofEnv, TacticError, TacticState, Theorem

Algorithm = Literal["best_first", "sample", "mcts"]


class SearchConfig(BaseModel):
    """One search's knobs; the defaults run. Budgets stop the search at whichever comes first."""

    algorithm: Algorithm = "best_first"
    budget_seconds: float = Field(300.0, gt=0, description="wall-time budget for one theorem")
    max_expansions: int = Field(200, ge=1, description="best_first: states expanded; mcts: tactics tried")
    max_samples: int = Field(32, ge=1, description="sample: whole proofs generated")
    num_candidates: int = Field(16, ge=1, description="tactics proposed per expanded state")
    tactic_timeout: float = Field(10.0, gt=0, description="seconds per tactic")
    check_timeout: float = Field(60.0, gt=0, description="seconds per whole-proof check")
    max_depth: int = Field(50, ge=1, description="longest tactic sequence explored")
    # sample (whole-proof + truncate-and-resume)
    samples_per_round: int = Field(4, ge=1, description="proofs sampled from the same prefix at once")
    resume: bool = Field(True, description="truncate at the first error and resume from the valid prefix")
    resume_patience: int = Field(3, ge=1, description="rounds without a longer prefix before restarting")
    # mcts (RMaxTS)
    exploration: float = Field(1.0, ge=0, description="UCB exploration constant")
    discount: float = Field(0.99, gt=0, le=1, description="discounted-UCB factor per visit")
    novelty_bonus: bool = Field(True, description="RMaxTS intrinsic reward 1 for a new tactic state")
    parallel: int = Field(1, ge=1, description="leaves expanded concurrently (virtual loss keeps them apart)")
    virtual_loss: float = Field(1.0, ge=0, description="visits added to a path while it is being expanded")


@dataclass
class SearchResult:
    """Outcome of one search: status is proved / failed / timeout / error."""

    status: str
    proof: str | None = None  # text after the statement's `:=`, passed the final check
    tactics: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)  # why the last rejected candidate failed the final check
    error: str | None = None
    expansions: int = 0
    lean_calls: int = 0
    samples: int = 0
    candidates: int = 0  # complete proofs sent to the final check
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


class Budget:
    """Counters, the wall-clock deadline and the opened proofs of one search."""

    def __init__(self, config: SearchConfig):
        self.config = config
        self.started = time.monotonic()
        self.deadline = self.started + config.budget_seconds
        self.expansions = 0
        self.lean_calls = 0
        self.samples = 0
        self.opened: list[TacticState] = []  # roots this search started; released when it ends

    def time_left(self) -> float:
        return self.deadline - time.monotonic()

    def out_of_time(self) -> bool:
        return self.time_left() <= 0

    def timeout(self, limit: float) -> float:
        """A per-call limit that never runs past the deadline."""
        return max(0.001, min(limit, self.time_left()))

    def result(self, status: str, **fields) -> SearchResult:
        return SearchResult(status=status, expansions=self.expansions, lean_calls=self.lean_calls,
                            samples=self.samples, seconds=round(time.monotonic() - self.started, 3), **fields)


class Verifier:
    """The gate every candidate proof passes before a search may report "proved"."""

    def __init__(self, theorem: Theorem, env: ProofEnv, budget: Budget, policy=None):
        self.theorem, self.env, self.budget, self.policy = theorem, env, budget, policy
        self.candidates = 0
        self.reasons: list[str] = []
        self._rejected: set[str] = set()

    def accept(self, proof: str) -> bool:
        """Run the final check on `proof` (text after `:=`); remember the reasons if it fails."""
        if proof in self._rejected:
            return False
        from ..verification import CheckPolicy, final_check

        self.candidates += 1
        self.budget.lean_calls += 1
        verdict = final_check(self.theorem, proof, self.env, policy=self.policy or CheckPolicy(),
                              timeout=self.budget.timeout(self.budget.config.check_timeout))
        if verdict.accepted:
            return True
        self.reasons = list(verdict.reasons)
        self._rejected.add(proof)
        return False

    def proved(self, proof: str, tactics: list[str] | None = None) -> SearchResult:
        return self.budget.result("proved", proof=proof, tactics=tactics or [], candidates=self.candidates)

    def unproved(self, error: str | None = None) -> SearchResult:
        """failed, or timeout when the wall-clock budget ran out (error: the start failed)."""
        status = "error" if error else ("timeout" if self.budget.out_of_time() else "failed")
        return self.budget.result(status, reasons=self.reasons, error=error, candidates=self.candidates)


def tactics_to_proof(tactics: list[str] | tuple[str, ...]) -> str:
    """A `by` block with one tactic per line (continuation lines keep their relative indent)."""
    lines = ["by"]
    for tactic in tactics:
        lines.extend("  " + line for line in tactic.split("\n"))
    return "\n".join(lines)


def proof_source(theorem: Theorem, proof: str) -> str:
    """The declaration text Lean checks (after the header): statement + proof."""
    return f"{theorem.statement} {proof}"


def open_theorem(theorem: Theorem, env: ProofEnv, config: SearchConfig, budget: Budget,
                 verifier: Verifier) -> TacticState | SearchResult:
    """The theorem's first tactic state (one Lean call), or the unproved result when it does not elaborate."""
    budget.lean_calls += 1
    state = env.start(theorem, timeout=budget.timeout(config.check_timeout))
    if isinstance(state, TacticError):
        return verifier.unproved(error=f"the statement did not elaborate: {state.message}")
    budget.opened.append(state)
    return state
