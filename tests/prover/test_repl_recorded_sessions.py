"""ReplEnv end to end on real recorded Lean sessions: the fake REPL checks every command ReplEnv sends
equals the recorded one and answers with what real Lean answered."""
from __future__ import annotations

import sys
from pathlib import Path

from prover import ProofFinished, TacticError, TacticState, Theorem
from prover.repl import ReplConfig, ReplEnv

FAKE = str(Path(__file__).parent / "fake_repl.py")


def recorded_env(shared_fixtures: Path, name: str) -> ReplEnv:
    base = shared_fixtures / "lean" / "repl" / name
    cmd = [sys.executable, FAKE, "--transcript", str(base)]
    return ReplEnv(ReplConfig(repl_command=cmd, pool_size=1, respawn=False, command_timeout=30))


def test_readme_session(shared_fixtures):
    with recorded_env(shared_fixtures, "readme") as env:
        s0 = env.start(Theorem("f", "", "def f (x : Unit) : Nat :="))
        assert isinstance(s0, TacticState) and s0.goals == ("x : Unit\n⊢ Nat",)
        s1 = env.run_tactic(s0, "apply Int.natAbs")
        assert isinstance(s1, TacticState) and s1.pp == "x : Unit\n⊢ Int"
        assert env.run_tactic(s1, "exact -37") == ProofFinished(("apply Int.natAbs", "exact -37"))


def test_branching_from_an_earlier_state(shared_fixtures):
    with recorded_env(shared_fixtures, "proof_step") as env:
        s0 = env.start(Theorem("f", "", "def f : Nat :="))
        assert isinstance(env.run_tactic(s0, "apply Int.natAbs"), TacticState)
        s2 = env.run_tactic(s0, "have t : Nat := 42")
        assert isinstance(s2, TacticState) and s2.goals == ("t : Nat\n⊢ Nat",)
        assert env.run_tactic(s2, "exact t") == ProofFinished(("have t : Nat := 42", "exact t"))


def test_rejected_tactics(shared_fixtures):
    with recorded_env(shared_fixtures, "unknown_tactic") as env:
        err = env.run_tactic(env.start(Theorem("f", "", "def f : Nat :=")), "exat 42")
        assert isinstance(err, TacticError) and "unknown tactic" in err.message
    with recorded_env(shared_fixtures, "invalid_tactic") as env:
        s0 = env.start(Theorem("my_theorem", "", "theorem my_theorem (x : Nat) : x = x :="))
        err = env.run_tactic(s0, "exact my_fake_premise")
        assert isinstance(err, TacticError) and "Unknown identifier `my_fake_premise`" in err.message


def test_mathlib_header_imported_once(shared_fixtures):
    with recorded_env(shared_fixtures, "Mathlib/test/exact") as env:
        s0 = env.start(Theorem("test", "import Mathlib", "theorem test : 0 < 1 :="))
        assert isinstance(s0, TacticState) and s0.pp == "⊢ 0 < 1"
        assert env.run_tactic(s0, "exact?") == ProofFinished(("exact?",))
        s2 = env.start(Theorem("test", "import Mathlib", "theorem test : 3 = 7 :="))
        err = env.run_tactic(s2, "exact?")
        assert isinstance(err, TacticError) and "could not close the goal" in err.message
        assert env.pool.spawned == 1
