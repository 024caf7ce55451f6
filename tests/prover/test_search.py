"""Search algorithms on the toy ProofEnv: each finds proofs a weaker variant misses at equal budget."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from toy_env import NoisyStepGenerator, TableGenerator, ToyEnv  # noqa: E402

from prover.protocol import CheckOutput, LeanMessage, Theorem  # noqa: E402
from prover.proof_search import SearchConfig, search, tactics_to_proof  # noqa: E402
from prover.proof_search.sample import valid_lines  # noqa: E402


def toy(goal: str, name: str = "t", header: str = "") -> Theorem:
    return Theorem(name=name, header=header, statement=f"theorem {name} : {goal} :=")


# A generator that likes the wrong branch: `right` leads to an endless chain of new states.
TRAP = TableGenerator({
    r".* ∨ .*": [("right", -0.1), ("left", -1.5)],
    r"loop \d+": [("unfold loop", -0.5)],
    r"step 0": [("sorry", -0.01), ("exact step_zero", -0.1)],
    r"step \d+": [("skip", -0.05), ("apply step_succ", -0.1)],
})


def test_best_first_beats_greedy_at_equal_expansions():
    theorem = toy("step 3 ∨ loop 0")
    greedy = search(theorem, ToyEnv(), TRAP, SearchConfig(num_candidates=1, max_expansions=20))
    best = search(theorem, ToyEnv(), TRAP, SearchConfig(num_candidates=8, max_expansions=20))
    assert greedy.status == "failed" and greedy.expansions == 20
    assert best.status == "proved", best
    assert best.tactics == ["left", "apply step_succ", "apply step_succ", "apply step_succ", "exact step_zero"]
    assert best.proof == tactics_to_proof(best.tactics)
    # `sorry` closed the goal first (higher log-prob) but the final check refused it.
    assert best.candidates == 2 and "sorry" not in best.proof
    assert best.lean_calls > best.expansions


def test_best_first_dedupes_states_by_pretty_printed_goals():
    only_skip = TableGenerator({r".*": [("skip", -0.1), ("rw [Nat.add_comm]", -0.2)]})
    result = search(toy("1 + 2 = 4"), ToyEnv(), only_skip, SearchConfig(max_expansions=50))
    # root, then `2 + 1 = 4`; rewriting back gives the root's goals again, so the search ends.
    assert result.status == "failed" and result.expansions == 2


def test_sorry_and_nonstandard_axioms_are_never_reported_as_proved():
    cheats = TableGenerator({r".*": [("sorry", -0.1), ("native_decide", -0.2)]})
    result = search(toy("2 + 2 = 4"), ToyEnv(), cheats, SearchConfig(max_expansions=5))
    assert result.status == "failed" and result.proof is None
    assert result.candidates == 2 and result.reasons  # the final check said why


def test_mathlib_tactics_only_with_mathlib_header():
    gen = TableGenerator({r".*": [("norm_num", -0.1)]})
    plain = search(toy("2 + 2 = 4"), ToyEnv(), gen, SearchConfig(max_expansions=3))
    mathlib = search(toy("2 + 2 = 4", header="import Mathlib\n"), ToyEnv(), gen, SearchConfig(max_expansions=3))
    assert plain.status == "failed" and mathlib.status == "proved"


def test_timeout_error_and_broken_generator_statuses():
    endless = TableGenerator({r"loop \d+": [("unfold loop", -0.1)]})
    timed = search(toy("loop 0"), ToyEnv(), endless, SearchConfig(budget_seconds=0.3, max_expansions=10**9, max_depth=10**9))
    assert timed.status == "timeout" and timed.expansions > 10
    bad = search(Theorem("t", "", "example := 1"), ToyEnv(), endless, SearchConfig())
    assert bad.status == "error" and "did not elaborate" in bad.error

    class Broken:
        def propose_tactics(self, theorem, state, n):
            raise ConnectionError("model server at http://127.0.0.1:9 refused the connection")

    broken = search(toy("loop 0"), ToyEnv(), Broken(), SearchConfig())
    assert broken.status == "error" and "refused" in broken.error


# RMaxTS: the root offers a dead end (`right`: one state where every tactic fails) and a long
# chain (`left`) where every tactic makes progress. Plain UCB has no reward signal before the
# proof and splits visits evenly; the novelty bonus sends visits where new states appear.
FAILING = [(t, -1.0) for t in ("rfl", "simp", "trivial", "decide", "omega", "left", "right", "constructor")]
CHAIN = TableGenerator({
    r".* ∨ .*": [("right", -1.0), ("left", -1.0)],
    r"step 0": [("exact step_zero", -1.0)],
    r"step \d+": [("apply step_succ", -1.0)],
    r"stuck\d* \d+": FAILING + [(f"apply lemma{i}", -1.0) for i in range(8)],
})


def test_mcts_novelty_bonus_finds_proof_plain_ucb_misses():
    theorem = toy("step 16 ∨ stuck1 0")
    config = dict(algorithm="mcts", max_expansions=28, num_candidates=16)
    plain = search(theorem, ToyEnv(), CHAIN, SearchConfig(novelty_bonus=False, **config))
    rmax = search(theorem, ToyEnv(), CHAIN, SearchConfig(novelty_bonus=True, **config))
    assert plain.status == "failed" and plain.expansions == 28
    assert rmax.status == "proved", rmax
    assert rmax.tactics == ["left"] + ["apply step_succ"] * 16 + ["exact step_zero"]


def test_mcts_parallel_expansion_with_virtual_loss():
    env = ToyEnv()
    result = search(toy("step 16 ∨ stuck1 0"), env, CHAIN,
                    SearchConfig(algorithm="mcts", max_expansions=28, num_candidates=16, parallel=3))
    assert result.status == "proved" and result.expansions <= 28


def test_mcts_stops_when_the_tree_is_exhausted():
    result = search(toy("stuck1 0 ∨ stuck2 0"), ToyEnv(), CHAIN, SearchConfig(algorithm="mcts", max_expansions=500, num_candidates=16))
    assert result.status == "failed"
    assert result.expansions == 2 + 2 * 16  # both branches, then every tactic of each dead end


def test_truncate_and_resume_beats_plain_resampling_at_equal_samples():
    theorem = toy("step 16")
    proved = {}
    for resume in (False, True):
        config = SearchConfig(algorithm="sample", resume=resume, max_samples=16, samples_per_round=4)
        results = [search(theorem, ToyEnv(), NoisyStepGenerator(0.3, seed), config) for seed in range(6)]
        assert all(r.samples <= 16 for r in results)
        proved[resume] = [r for r in results if r.status == "proved"]
    assert len(proved[True]) == 6 and len(proved[False]) < 2
    resumed = proved[True][0].proof
    assert "/- tactic state:" in resumed and "⊢ step" in resumed  # resumed from a commented state


def test_valid_lines_cuts_at_first_error_and_keeps_all_when_only_goals_remain():
    theorem = Theorem("t", "", "theorem t :\n    step 3 :=")
    proof = "by\n  apply step_succ\n  -- a comment\n  apply step_succ\n  apply oops\n  apply step_succ"
    cut = CheckOutput(messages=[LeanMessage("warning", "unused", line=1),
                                LeanMessage("error", "unknown tactic", line=6, column=2)])
    assert valid_lines(theorem, proof, cut) == ["  apply step_succ", "  apply step_succ"]
    unsolved = CheckOutput(messages=[LeanMessage("error", "unsolved goals\n⊢ step 1", line=2)])
    assert valid_lines(theorem, proof, unsolved) == [
        "  apply step_succ", "  apply step_succ", "  apply oops", "  apply step_succ"]
    assert valid_lines(theorem, proof, CheckOutput()) is None


def test_tactics_to_proof_indents_multiline_tactics():
    assert tactics_to_proof(["intro n", "induction n with\n| zero => rfl"]) == (
        "by\n  intro n\n  induction n with\n  | zero => rfl")


def test_package_level_search_is_callable_after_the_package_is_imported():
    import prover

    assert prover.SearchConfig is SearchConfig
    result = prover.search(toy("True"), ToyEnv(), TableGenerator({r".*": [("trivial", -0.1)]}), SearchConfig())
    assert result.status == "proved"


def test_virtual_loss_spreads_parallel_selections():
    from prover.protocol import Proposal, TacticState
    from prover.proof_search.mcts import _Node, _Tree

    def tree():
        root = _Node(TacticState(0, "⊢ root"), (), proposals=[Proposal("a", -1.0), Proposal("b", -1.0)], tried=2)
        for i, name in enumerate("ab"):
            child = _Node(TacticState(i + 1, f"⊢ {name}"), (name,), parent=root, visits=1.0, value=1.0,
                          proposals=[Proposal("x", -1.0), Proposal("y", -1.0)])
            root.children.append(child)
        return _Tree(toy("True"), None, SearchConfig(algorithm="mcts"), root)

    t = tree()
    first, _ = t.select()
    assert t.select()[0] is first  # no virtual loss: the same leaf again
    t = tree()
    first, _ = t.select()
    t.mark(first, 1.0)
    second, _ = t.select()
    assert second is not first and {first.tactics, second.tactics} == {("a",), ("b",)}
    t.mark(first, -1.0)
    assert first.virtual == 0 and t.root.virtual == 0
