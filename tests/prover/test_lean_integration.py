"""Against real Lean: run when PROOFCODE_LEAN_PROJECT names a Lake project with the REPL and `lake` exists.

    PROOFCODE_LEAN_PROJECT=~/lean/myproject python -m pytest -q tests/prover/test_lean_integration.py
    # optional: PROOFCODE_LEAN_MATHLIB=1 when the project requires Mathlib (checks a miniF2F problem);
    # PROOFCODE_LEANDOJO_REPO/_COMMIT/_FILE/_THEOREM[/_TACTIC] for a LeanDojo session
"""
from __future__ import annotations

import json
import os

import pytest

from prover import ProofFinished, TacticError, TacticState, Theorem
from prover.verification import CheckPolicy, final_check
from prover.lean_project import find_lake

PROJECT = os.environ.get("PROOFCODE_LEAN_PROJECT")
pytestmark = [
    pytest.mark.lean,
    pytest.mark.skipif(find_lake() is None, reason="no `lake` on PATH or in ~/.elan/bin (install elan)"),
]
THM = Theorem("and_intro_t", "", "theorem and_intro_t (p q : Prop) (hp : p) (hq : q) : p ∧ q :=")


@pytest.fixture(scope="module")
def env():
    from prover.repl import ReplConfig, ReplEnv

    if not PROJECT:
        pytest.skip("set PROOFCODE_LEAN_PROJECT to a Lake project that requires the REPL")
    with ReplEnv(ReplConfig(project=PROJECT, pool_size=1, command_timeout=120)) as e:
        yield e


def test_tactic_session(env):
    s0 = env.start(THM)
    assert isinstance(s0, TacticState) and "⊢ p ∧ q" in s0.pp
    s1 = env.run_tactic(s0, "constructor")
    assert isinstance(s1, TacticState) and len(s1.goals) == 2
    assert isinstance(env.run_tactic(s1, "exact hq"), TacticError)
    s2 = env.run_tactic(s1, "exact hp")
    assert env.run_tactic(s2, "exact hq") == ProofFinished(("constructor", "exact hp", "exact hq"))


def test_final_check_with_real_lean(env):
    four = Theorem("four_t", "", "theorem four_t : 2 + 2 = 4 :=")
    ok = final_check(four, "by decide", env)
    assert ok.accepted, ok.reasons
    assert not final_check(four, "by sorry", env).accepted
    assert not final_check(four, "by\n  skip", env).accepted
    native = final_check(four, "by native_decide", env, CheckPolicy(allow_native_decide=True))
    assert native.accepted and "Lean.ofReduceBool" in native.axioms
    hidden = Theorem("four_t", "theorem cheat : 2 + 2 = 4 := by native_decide\n", four.statement)
    assert any("ofReduceBool" in r for r in final_check(hidden, "by exact cheat", env).reasons)


@pytest.mark.skipif(not os.environ.get("PROOFCODE_LEAN_MATHLIB"), reason="set PROOFCODE_LEAN_MATHLIB=1 if the project has Mathlib")
def test_minif2f_problem_with_mathlib(env, shared_fixtures):
    row = json.loads((shared_fixtures / "lean" / "minif2f" / "minif2f.jsonl").read_text().splitlines()[0])
    statement = row["formal_statement"].rstrip()
    statement = statement[: statement.rfind(":=") + 2]
    thm = Theorem(row["name"], row["header"], statement)
    assert isinstance(env.start(thm), TacticState)
    assert not final_check(thm, "by sorry", env).accepted


DOJO = {k: os.environ.get(f"PROOFCODE_LEANDOJO_{k.upper()}") for k in ("repo", "commit", "file", "theorem", "tactic")}


@pytest.mark.skipif(not all(DOJO[k] for k in ("repo", "commit", "file", "theorem")),
                    reason="set PROOFCODE_LEANDOJO_REPO/_COMMIT/_FILE/_THEOREM (and _TACTIC) to a traceable theorem")
def test_dojo_session():
    from prover.dojo import DojoConfig, DojoEnv

    env = DojoEnv(DojoConfig(repo=DOJO["repo"], commit=DOJO["commit"], file=DOJO["file"]))
    try:
        s0 = env.start(Theorem(DOJO["theorem"], "", ""))
        assert isinstance(s0, TacticState) and "⊢" in s0.pp
        assert isinstance(env.run_tactic(s0, "exact no_such_lemma_xyz"), TacticError)
        if DOJO["tactic"]:
            assert isinstance(env.run_tactic(s0, DOJO["tactic"]), (TacticState, ProofFinished))
    finally:
        env.close()
