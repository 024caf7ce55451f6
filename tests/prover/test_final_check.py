"""The final check rejects every kind of non-proof, with the reason, using Lean-shaped answers from the fake REPL."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from prover import CheckOutput, LeanMessage, Theorem
from prover.verification import CheckPolicy, final_check, lean_reasons, strip_comments, theorem_name
from prover.repl import ReplConfig, ReplEnv

FAKE = str(Path(__file__).parent / "fake_repl.py")
HEADER = "import Mathlib\nopen Nat\n"
THM = Theorem("four", HEADER, "theorem four : 2 + 2 = 4 :=")


@pytest.fixture(scope="module")
def env():
    with ReplEnv(ReplConfig(repl_command=[sys.executable, FAKE], command_timeout=2)) as e:
        yield e


def reasons_of(verdict) -> str:
    assert not verdict.accepted, "expected a rejection"
    return "\n".join(verdict.reasons)


def test_real_proof_is_accepted(env):
    v = final_check(THM, "by\n  norm_num", env)
    assert v.accepted and v.reasons == []
    assert sorted(v.axioms) == ["Classical.choice", "Quot.sound", "propext"]
    assert final_check(THM, "by\n  -- native_decide would be cheating; sorry for the comment\n  rfl", env).accepted
    assert final_check(THM, 'by\n  have : "theorem #exit" = "theorem #exit" := rfl\n  rfl', env).accepted


def test_sorry_in_text_and_in_lean(env):
    assert "uses sorry" in reasons_of(final_check(THM, "by\n  sorry", env))
    # Lean's own report: sorry warning, the sorry's goal and sorryAx all give reasons
    out = env.check("theorem four : 2 + 2 = 4 := by\n  sorry", HEADER, print_axioms=["four"])
    text = "\n".join(lean_reasons(out, "four", CheckPolicy())[0])
    assert "declaration uses `sorry`" in text and "contains 1 sorry" in text and "sorryAx" in text
    # a sorry smuggled in through a lemma the header proves with sorry: only #print axioms sees it
    thm = Theorem("four", HEADER + "theorem cheat : 2 + 2 = 4 := by sorry\n", THM.statement)
    assert "depends on sorryAx" in reasons_of(final_check(thm, "by exact cheat", env))


def test_new_axioms(env):
    assert "command keywords axiom" in reasons_of(final_check(THM, "by exact ax\naxiom ax : 2 + 2 = 4", env))
    thm = Theorem("four", HEADER + "axiom ax : 2 + 2 = 4\n", THM.statement)
    assert "depends on axiom ax" in reasons_of(final_check(thm, "by exact ax", env))
    assert final_check(thm, "by exact ax", env, CheckPolicy(allowed_axioms=["ax"])).accepted


def test_native_decide(env):
    assert "native_decide" in reasons_of(final_check(THM, "by native_decide", env))
    assert "trusts compiled code" in reasons_of(final_check(THM, "by decide +native", env))
    v = final_check(THM, "by native_decide", env, CheckPolicy(allow_native_decide=True))
    assert v.accepted and "Lean.ofReduceBool" in v.axioms
    thm = Theorem("four", HEADER + "theorem nd : 2 + 2 = 4 := by native_decide\n", THM.statement)
    assert "Lean.ofReduceBool" in reasons_of(final_check(thm, "by exact nd", env))


def test_changed_statement(env):
    restated = "theorem four : 2 + 2 = 5 := by\n  norm_num"
    assert "different statement" in reasons_of(final_check(THM, restated, env))
    assert final_check(THM, "theorem  four :\n 2 + 2 = 4 := by\n  norm_num", env).accepted
    # closing the theorem and declaring a replacement after it
    trick = "by\n  norm_num\ntheorem four' : 1 = 1 := rfl"
    assert "command keywords theorem" in reasons_of(final_check(THM, trick, env))


def test_error_after_a_successful_looking_message(env):
    v = final_check(THM, "by\n  exact?\n  fake_error", env)
    assert v.messages[0].severity == "info" and v.messages[0].text.startswith("Try this")
    assert "fake_error: elaboration failed" in reasons_of(v)


def test_unsolved_goals(env):
    assert "unsolved goals" in reasons_of(final_check(THM, "by\n  skip", env))


@pytest.mark.parametrize("proof, reason", [
    ("by norm_num\n#exit", "#exit"),
    ("by norm_num\n@[simp] lemma x : True := trivial", "@["),
    ("by norm_num\nmacro \"norm_num\" : tactic => `(tactic| sorry)", "macro"),
    ("by norm_num end", "end"),
    ("by\n  set_option debug.skipKernelTC true in norm_num", "set_option"),
    ("by\n  norm_num /- unterminated", "unterminated /- comment"),
    ('by\n  have : "-- x" = "-- x" := rfl theorem', "theorem"),
    ("by\n  have : '\"' = '\"' := rfl\n  theorem", "theorem"),
    ("by\n  run_tac pure ()", "run_tac"),
    ("by exact (implemented_by_hack)", None),
    ("by\n  norm_num\n  attribute [implemented_by foo] bar", "implemented_by"),
    ("", "empty"),
])
def test_text_tricks(env, proof, reason):
    v = final_check(THM, proof, env)
    if reason is None:  # identifiers merely containing a keyword are not flagged by the text check
        assert not any("implemented_by" in r for r in v.reasons)
    else:
        assert reason in reasons_of(v)


def test_flags_let_options_through(env):
    v = final_check(THM, "by\n  set_option maxRecDepth 1000 in norm_num", env, CheckPolicy(allow_set_option=True))
    assert v.accepted, v.reasons


def test_timeout_and_crash_are_rejections(env):
    assert "timed out" in reasons_of(final_check(THM, "by fake_hang", env, timeout=1))
    assert "crashed" in reasons_of(final_check(THM, "by fake_crash", env))
    assert final_check(THM, "by norm_num", env).accepted  # the pool recovered


def test_statement_without_name_is_rejected(env):
    assert "theorem name" in reasons_of(final_check(Theorem("e", HEADER, "example : 1 = 1 :="), "rfl", env))


def test_missing_axioms_output_is_a_rejection():
    out = CheckOutput(messages=[LeanMessage("info", "all good")])
    assert "listed nothing" in "\n".join(lean_reasons(out, "four", CheckPolicy())[0])


def test_strip_comments_and_names():
    code, problem = strip_comments('a -- x\n/- b /- c -/ d -/ e "--s" f')
    assert problem is None and code.split() == ["a", "e", '"--s"', "f"]
    assert theorem_name("theorem mathd_algebra_10 (x : ℝ) : x = x :=") == "mathd_algebra_10"
    assert theorem_name("/- doc -/ lemma foo.bar : True :=") == "foo.bar"


def test_no_recorded_real_response_with_an_error_or_sorry_passes(shared_fixtures):
    """Every command response real Lean gave in the recorded transcripts, judged as a check result."""
    import json
    import re

    from prover.repl import _check_output
    from prover.repl_protocol import parse_response

    judged = 0
    for path in sorted((shared_fixtures / "lean" / "repl").rglob("*.expected.out")):
        for block in [b for b in re.split(r"\n\s*\n", path.read_text()) if b.strip()]:
            resp = parse_response(json.loads(block))
            if resp.env is None:
                continue
            out = _check_output(resp)
            out.axioms = {"thm": []}  # as if #print axioms were clean: only Lean's messages decide
            reasons, _ = lean_reasons(out, "thm", CheckPolicy())
            bad = bool(resp.errors or resp.sorries or any("sorry" in m.text for m in resp.messages))
            assert bool(reasons) == bad, (path.name, block[:200])
            judged += 1
    assert judged > 100
