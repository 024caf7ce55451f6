"""A ProofEnv test double for Lean rewards (no Lean toolchain here): `norm_num` proves everything."""
from __future__ import annotations

from prover import CheckOutput, LeanMessage


class NormNumLean:
    """Accepts a proof iff it uses `norm_num` and no `sorry`; reports axioms like `#print axioms`."""

    def __init__(self):
        self.checked: list[str] = []

    def check(self, source, header="", timeout=None, print_axioms=()):
        self.checked.append(source)
        if "sorry" in source:
            return CheckOutput(messages=[LeanMessage("warning", "declaration uses 'sorry'", 1)], sorries=["⊢ goal"],
                               axioms={n: ["sorryAx"] for n in print_axioms})
        if "norm_num" not in source:
            return CheckOutput(messages=[LeanMessage("error", "unsolved goals", 2)])
        return CheckOutput(axioms={n: ["propext"] for n in print_axioms})

    def start(self, theorem, timeout=None):
        raise NotImplementedError("final_check only calls check()")

    def run_tactic(self, state, tactic, timeout=None):
        raise NotImplementedError("final_check only calls check()")

    def close(self):
        pass
