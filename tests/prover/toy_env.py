"""A small deterministic ProofEnv TEST DOUBLE for the search tests (no Lean involved).

Statements look like `theorem NAME : GOAL :=`. A goal is a formula over atoms:
  `True`, `False`, `a = b` (natural-number arithmetic with + and *),
  `step N` (closed by `exact step_zero` when N = 0; `apply step_succ` turns it into `step N-1`),
  `loop N` (`unfold loop` turns it into `loop N+1`, forever),
  `stuckI N` (nothing applies; `apply weakenI` turns `step N` into it, for any digits I),
joined by `∧` / `∨` (with parentheses). Tactics act on the first goal:
  `constructor`, `left`, `right`, `trivial`, `rfl`, `decide`, `omega`, `simp`, `skip`,
  `rw [Nat.add_comm]` (swaps the operands of a top-level `+` on the left), `sorry`,
  `native_decide` (works, but the proof then depends on the axiom `Lean.ofReduceBool`),
  `slow` (always times out), and the Mathlib-only `norm_num`/`linarith` (an "unknown tactic"
  error unless the header imports Mathlib).
`check()` replays a `by` block line by line and reports what Lean would: the first failing
tactic as an error at its 1-based line of `source`, "unsolved goals" at the `by` line,
a warning plus the goal for every `sorry`, and `#print axioms` results when asked.
"""
from __future__ import annotations

import re
import threading
from typing import Sequence

from prover.protocol import (
    CheckOutput,
    LeanMessage,
    ProofFinished,
    TacticError,
    TacticResult,
    TacticState,
    Theorem,
)

MATHLIB_TACTICS = {"norm_num", "linarith"}
_STATEMENT = re.compile(r"^\s*theorem\s+(\S+)\s*:\s*(.*?)\s*:=\s*$", re.DOTALL)


def _split_top(goal: str, op: str) -> list[str] | None:
    """Split `goal` at the first top-level `op` (outside parentheses)."""
    depth = 0
    for i, ch in enumerate(goal):
        depth += ch == "("
        depth -= ch == ")"
        if depth == 0 and goal.startswith(op, i):
            return [_strip(goal[:i]), _strip(goal[i + len(op):])]
    return None


def _strip(goal: str) -> str:
    goal = goal.strip()
    while goal.startswith("(") and goal.endswith(")") and _balanced(goal[1:-1]):
        goal = goal[1:-1].strip()
    return goal


def _balanced(text: str) -> bool:
    depth = 0
    for ch in text:
        depth += (ch == "(") - (ch == ")")
        if depth < 0:
            return False
    return depth == 0


def _eval(expr: str) -> int | None:
    if not re.fullmatch(r"[0-9+*() ]+", expr):
        return None
    try:
        return int(eval(expr, {"__builtins__": {}}))  # digits, + and * only (checked above)
    except SyntaxError:
        return None


def _true_equation(goal: str) -> bool:
    sides = goal.split(" = ")
    return len(sides) == 2 and _eval(sides[0]) is not None and _eval(sides[0]) == _eval(sides[1])


class _Failure(Exception):
    def __init__(self, message: str, timeout: bool = False):
        super().__init__(message)
        self.timeout = timeout


def apply_tactic(goals: tuple[str, ...], tactic: str, mathlib: bool) -> tuple[tuple[str, ...], set[str]]:
    """The toy semantics: new goal list and the axioms the step used. Raises _Failure."""
    if not goals:
        raise _Failure("no goals to be proved")
    goal, rest = goals[0], goals[1:]
    name = tactic.split()[0] if tactic.split() else ""
    if name in MATHLIB_TACTICS and not mathlib:
        raise _Failure(f"unknown tactic '{name}'")
    if tactic == "sorry":
        return rest, {"sorryAx"}
    if tactic == "skip":
        return goals, set()
    if tactic == "slow":
        raise _Failure("(deterministic) timeout at whnf, maximum number of heartbeats", timeout=True)
    if tactic == "native_decide" and _true_equation(goal):
        return rest, {"Lean.ofReduceBool"}
    closes = {
        "trivial": goal == "True",
        "simp": goal == "True" or _true_equation(goal),
        "rfl": _true_equation(goal) and len(set(goal.split(" = "))) == 1,
        "decide": _true_equation(goal),
        "omega": _true_equation(goal),
        "norm_num": _true_equation(goal) or goal == "True",
        "linarith": _true_equation(goal),
        "exact step_zero": goal == "step 0",
    }
    if closes.get(tactic):
        return rest, set()
    new = _rewrite(goal, tactic)
    if new is None:
        raise _Failure(f"tactic '{name}' failed\n⊢ {goal}")
    return tuple(new) + rest, set()


def _rewrite(goal: str, tactic: str) -> list[str] | None:
    if tactic == "constructor" and (parts := _split_top(goal, " ∧ ")):
        return parts
    if tactic in ("left", "right") and (parts := _split_top(goal, " ∨ ")) and not _split_top(goal, " ∧ "):
        return [parts[0] if tactic == "left" else parts[1]]
    number = re.fullmatch(r"(step|loop) (\d+)", goal)
    if number and number[1] == "step" and tactic == "apply step_succ" and int(number[2]) > 0:
        return [f"step {int(number[2]) - 1}"]
    weaken = re.fullmatch(r"apply weaken(\d*)", tactic)
    if number and number[1] == "step" and weaken:
        return [f"stuck{weaken[1]} {number[2]}"]
    if number and number[1] == "loop" and tactic == "unfold loop":
        return [f"loop {int(number[2]) + 1}"]
    if tactic == "rw [Nat.add_comm]" and " = " in goal:
        lhs, rhs = goal.split(" = ", 1)
        if (terms := _split_top(lhs, " + ")):
            return [f"{terms[1]} + {terms[0]} = {rhs}"]
    return None


def pretty(goals: Sequence[str]) -> str:
    return "\n\n".join(f"⊢ {g}" for g in goals) if goals else "no goals"


class ToyEnv:
    """A thread-safe ProofEnv over the toy goal language. `calls` counts every request;
    `_states` maps a live state to (goals, mathlib?, the id of its proof's root)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._states: dict[int, tuple[tuple[str, ...], bool, int]] = {}
        self._next = 0
        self.calls = 0
        self.released = 0  # proofs released
        self.closed = False

    def _new_state(self, goals: tuple[str, ...], mathlib: bool, root: int | None = None) -> TacticState:
        with self._lock:
            sid, self._next = self._next, self._next + 1
            self._states[sid] = (goals, mathlib, sid if root is None else root)
        return TacticState(id=sid, pp=pretty(goals), goals=goals)

    def start(self, theorem: Theorem, timeout: float | None = None) -> TacticState | TacticError:
        self.calls += 1
        match = _STATEMENT.match(theorem.statement)
        if not match:
            return TacticError(f"toy env: cannot parse statement {theorem.statement!r}")
        return self._new_state((_strip(match[2]),), "import Mathlib" in theorem.header)

    def run_tactic(self, state: TacticState, tactic: str, timeout: float | None = None) -> TacticResult:
        self.calls += 1
        with self._lock:
            held = self._states.get(state.id)
        if held is None:
            return TacticError(f"toy env: proof state {state.id} is not held (released or never made)")
        goals, mathlib, root = held
        try:
            new, _ = apply_tactic(goals, tactic.strip(), mathlib)
        except _Failure as exc:
            return TacticError(str(exc), timeout=exc.timeout)
        return ProofFinished() if not new else self._new_state(new, mathlib, root)

    def release(self, state: TacticState) -> None:
        with self._lock:
            held = self._states.get(state.id)
            if held is None:
                return
            self._states = {sid: v for sid, v in self._states.items() if v[2] != held[2]}
            self.released += 1

    def check(self, source: str, header: str = "", timeout: float | None = None,
              print_axioms: Sequence[str] = ()) -> CheckOutput:
        self.calls += 1
        out = CheckOutput()
        head, sep, proof = source.partition(":=")
        match = _STATEMENT.match(head + sep)
        if not match:
            out.messages.append(LeanMessage("error", "unexpected token; expected ':='", line=1, column=0))
            return out
        name, by_line = match[1], head.count("\n") + 1
        goals: tuple[str, ...] = (_strip(match[2]),)
        axioms: set[str] = set()
        lines = _tactic_lines(proof, by_line)
        if lines is None:
            out.messages.append(LeanMessage("error", "toy env: proofs must be `by` blocks", line=by_line))
            return out
        for line_no, tactic in lines:
            try:
                if tactic == "sorry" and goals:
                    out.sorries.append(pretty(goals[:1]))
                goals, used = apply_tactic(goals, tactic, "import Mathlib" in header)
                axioms |= used
            except _Failure as exc:
                out.messages.append(LeanMessage("error", str(exc), line=line_no, column=2))
                out.timed_out = exc.timeout
                break
        else:
            if goals:
                out.messages.append(LeanMessage("error", f"unsolved goals\n{pretty(goals)}", line=by_line))
        if out.sorries:
            out.messages.append(LeanMessage("warning", "declaration uses 'sorry'", line=1, column=8))
        for decl in print_axioms:
            if decl != name:
                out.messages.append(LeanMessage("error", f"unknown constant '{decl}'", line=by_line + 1))
            else:
                out.axioms[decl] = sorted(axioms)
        return out

    def close(self) -> None:
        self.closed = True


def _tactic_lines(proof: str, by_line: int) -> list[tuple[int, str]] | None:
    """(line number, tactic) for each tactic of a `by` block, skipping comments."""
    lines = proof.split("\n")
    first = lines[0].strip()
    if not first.startswith("by"):
        return None
    found: list[tuple[int, str]] = []
    in_comment = False
    for offset, raw in enumerate([first[2:]] + lines[1:]):
        text = raw.strip()
        if in_comment:
            in_comment = "-/" not in text
            continue
        if text.startswith("/-"):
            in_comment = "-/" not in text[2:]
            continue
        if text and not text.startswith("--"):
            found.append((by_line + offset, text))
    return found


class TableGenerator:
    """A scripted Generator double: proposals looked up by regex on the first goal, in table order."""

    def __init__(self, table: dict[str, list[tuple[str, float]]]):
        self.table = [(re.compile(pattern), rows) for pattern, rows in table.items()]
        self.calls = 0

    def propose_tactics(self, theorem: Theorem, state: TacticState, n: int) -> list:
        from prover.protocol import Proposal

        self.calls += 1
        goal = state.goals[0] if state.goals else ""
        for pattern, rows in self.table:
            if pattern.fullmatch(goal):
                return [Proposal(t, lp) for t, lp in rows][:n]
        return []

    def propose_proofs(self, theorem: Theorem, prefix: str, n: int) -> list:
        return []


class NoisyStepGenerator:
    """Whole-proof double for `theorem NAME : step K`: writes the remaining `apply step_succ` lines
    and `exact step_zero`, each line independently replaced by a wrong tactic with probability
    `noise`. It reads how far the prefix got from the prefix's tactic lines (as a model would)."""

    def __init__(self, noise: float, seed: int):
        import random

        self.noise, self.rng = noise, random.Random(seed)

    def propose_tactics(self, theorem: Theorem, state: TacticState, n: int) -> list:
        return []

    def propose_proofs(self, theorem: Theorem, prefix: str, n: int) -> list:
        from prover.protocol import Proposal

        total = int(_STATEMENT.match(theorem.statement)[2].split()[1])
        done = sum(line.strip() == "apply step_succ" for line in prefix.split("\n"))
        wanted = ["apply step_succ"] * (total - done) + ["exact step_zero"]
        proofs = []
        for _ in range(n):
            lines = [t if self.rng.random() >= self.noise else "apply step_wrong" for t in wanted]
            proofs.append(Proposal("".join(f"  {t}\n" for t in lines), -1.0))
        return proofs
