"""The seams of the prover: a theorem, a proof environment, a tactic generator.

Backends (`prover.repl`, `prover.dojo`, the test double) implement `ProofEnv`; search
(`prover.proof_search`) only talks to this protocol and to a `Generator`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, Sequence, Union, runtime_checkable


@dataclass(frozen=True)
class Theorem:
    """A theorem as users submit it: header (imports, opens, variables) + statement without proof.

    `statement` is the `theorem name ... :=` text up to and including `:=`
    (miniF2F's `formal_statement` with its trailing `sorry`/`by sorry` removed).
    """

    name: str
    header: str
    statement: str
    informal_prefix: str = ""


@dataclass(frozen=True)
class TacticState:
    """An open proof state. `id` is the backend's handle; `pp` is Lean's pretty-printed goals."""

    id: int
    pp: str
    goals: tuple[str, ...] = ()


@dataclass(frozen=True)
class ProofFinished:
    """No goals left after the tactic. `tactics` is the proof so far, one tactic per entry."""

    tactics: tuple[str, ...] = ()


@dataclass(frozen=True)
class TacticError:
    """Lean rejected the tactic (or it timed out: `timeout=True`)."""

    message: str
    timeout: bool = False


TacticResult = Union[TacticState, ProofFinished, TacticError]


@dataclass(frozen=True)
class LeanMessage:
    """One message from Lean: severity is "error", "warning" or "info"; positions are 1-based lines."""

    severity: str
    text: str
    line: int | None = None
    column: int | None = None
    end_line: int | None = None
    end_column: int | None = None


@dataclass
class CheckOutput:
    """What Lean said about a complete piece of source (header + theorem + proof), unjudged.

    `sorries` holds the goal text of each `sorry` Lean reported. `axioms` maps a declaration
    name to the axioms `#print axioms` listed for it (filled only when asked for).
    """

    messages: list[LeanMessage] = field(default_factory=list)
    sorries: list[str] = field(default_factory=list)
    axioms: dict[str, list[str]] = field(default_factory=dict)
    timed_out: bool = False
    crashed: str | None = None  # the backend died while checking; the reason

    @property
    def errors(self) -> list[LeanMessage]:
        return [m for m in self.messages if m.severity == "error"]


class EnvError(RuntimeError):
    """The environment itself failed (no Lean, bad project, crash it could not recover from)."""


@runtime_checkable
class ProofEnv(Protocol):
    """A Lean proof session provider. Implementations must be safe to reuse across theorems,
    and must keep a bounded number of proof states (released ones are dropped)."""

    def start(self, theorem: Theorem, timeout: float | None = None) -> TacticState | TacticError:
        """Elaborate header + statement and return the initial goal state."""

    def run_tactic(self, state: TacticState, tactic: str, timeout: float | None = None) -> TacticResult:
        """Apply one tactic to an open state."""

    def release(self, state: TacticState) -> None:
        """Forget the proof `state` belongs to (every state reached from its `start`).

        Searches call it when they end, so a long-lived environment holds only live proofs;
        running a tactic on a released state afterwards is a `TacticError`.
        """

    def check(self, source: str, header: str = "", timeout: float | None = None,
              print_axioms: Sequence[str] = ()) -> CheckOutput:
        """Elaborate `source` after `header` in a fresh environment; report messages and sorries."""

    def close(self) -> None:
        """Release processes and files."""


@dataclass(frozen=True)
class Proposal:
    """A candidate from a generator: a tactic (or a whole proof) and its summed log-probability."""

    text: str
    logprob: float


@runtime_checkable
class Generator(Protocol):
    """Proposes tactics for a state, or proof continuations for a prefix."""

    def propose_tactics(self, theorem: Theorem, state: TacticState, n: int) -> list[Proposal]:
        """Up to `n` distinct candidate next tactics for `state`, best first."""

    def propose_proofs(self, theorem: Theorem, prefix: str, n: int) -> list[Proposal]:
        """Up to `n` sampled continuations of the proof text `prefix` (which follows `:=`)."""
