"""Thousands of tactic steps through one long-lived environment: its proof states and RSS stay flat.

Searches release their proofs when they end; callers that never release are held to `max_states`
(least recently used evicted, with an error naming the state and the bound). The REPL backend runs
against the fake REPL (a real subprocess); the Dojo backend against a stand-in for LeanDojo's
`Dojo` (the one thing here that needs Lean).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from toy_env import TableGenerator, ToyEnv  # noqa: E402

from prover import Proposal, TacticError, TacticState, Theorem  # noqa: E402
from prover.proof_search import SearchConfig, search  # noqa: E402
from prover.repl import ReplConfig, ReplEnv  # noqa: E402
from prover.repl_process import rss_mb  # noqa: E402

FAKE = str(Path(__file__).parent / "fake_repl.py")
THM = Theorem("t", "import Mathlib\n", "theorem t (p q : Prop) (hp : p) (hq : q) : p ∧ q :=")
PAD = " " * 8192  # a real proof state weighs kilobytes; without a bound 3,000 of these add ~25 MiB
SEARCHES, CANDIDATES = 150, 20  # 3,000 tactic steps


def own_rss() -> float:
    return rss_mb(os.getpid())  # no gc.collect(): states are freed by reference counting (and it costs 0.1 s)


class Skips:
    """Proposes `n` distinct heavy no-op tactics: each step makes a new state (same goals)."""

    def __init__(self):
        self.made = 0

    def propose_tactics(self, theorem, state, n):
        self.made += n
        return [Proposal(f"skip{PAD}{self.made + i}", -1.0) for i in range(n)]

    def propose_proofs(self, theorem, prefix, n):
        return []


def run_searches(env, theorem: Theorem) -> tuple[list[int], list[float]]:
    """(states held after each search, own RSS after each search)."""
    held, rss = [], []
    config = SearchConfig(num_candidates=CANDIDATES, max_expansions=1)
    generator = Skips()
    for _ in range(SEARCHES):
        result = search(theorem, env, generator, config)
        assert result.status == "failed" and result.lean_calls == CANDIDATES + 1, result
        held.append(len(env.states))
        rss.append(own_rss())
    assert generator.made == SEARCHES * CANDIDATES
    return held, rss


def assert_flat(rss: list[float], limit_mb: float = 8.0) -> None:
    warm = rss[len(rss) // 5]  # after the first fifth: allocator and caches are warm
    assert rss[-1] - warm < limit_mb, f"RSS grew {rss[-1] - warm:.1f} MiB over {len(rss)} searches: {rss[::15]}"


def test_repl_searches_release_their_states_and_rss_stays_flat():
    config = ReplConfig(repl_command=[sys.executable, FAKE], pool_size=1, max_commands=500, memory_limit_mb=None,
                        max_rss_growth_mb=None)  # no /proc scan per command: this test is about our own memory
    with ReplEnv(config) as env:
        held, rss = run_searches(env, THM)
        assert held == [0] * SEARCHES  # every search released its proof
        assert env.states.proofs == 0
        assert_flat(rss)
        # The REPL cannot delete its own copies: the pool restarts it every `max_commands`
        # commands, and released states are never replayed into the new process.
        assert env.pool.recycled >= SEARCHES * (CANDIDATES + 1) // 500 - 1
        assert isinstance(env.start(THM), TacticState)


def run_unreleased(env, theorem: Theorem) -> tuple[TacticState, list[TacticState], list[float]]:
    """Proofs nobody releases, `CANDIDATES` steps each: (the first root, each proof's last state, RSS)."""
    first, lasts, rss = None, [], []
    for k in range(SEARCHES):
        root = env.start(theorem)
        first = first or root
        for i in range(CANDIDATES):
            state = env.run_tactic(root, f"skip{PAD}{k}.{i}")
            assert isinstance(state, TacticState), state
            assert len(env.states) <= env.states.max_states
        lasts.append(state)
        rss.append(own_rss())
    return first, lasts, rss


def test_repl_without_release_is_held_to_max_states():
    config = ReplConfig(repl_command=[sys.executable, FAKE], pool_size=1, max_states=100, max_commands=500,
                        memory_limit_mb=None, max_rss_growth_mb=None)
    with ReplEnv(config) as env:
        first, lasts, rss = run_unreleased(env, THM)
        assert len(env.states) == 100
        assert_flat(rss)
        gone = env.run_tactic(first, "constructor")
        assert isinstance(gone, TacticError)
        assert "proof state 0 was evicted" in gone.message and "at most 100" in gone.message
        assert "ReplConfig.max_states" in gone.message
        # a recent state still works (rebuilt if its process was recycled)
        assert env.pool.recycled >= 5
        assert isinstance(env.run_tactic(lasts[-1], "constructor"), TacticState)


def test_released_state_is_a_clear_error():
    with ReplEnv(ReplConfig(repl_command=[sys.executable, FAKE])) as env:
        s0 = env.start(THM)
        s1 = env.run_tactic(s0, "constructor")
        other = env.start(THM)
        env.release(s1)  # any state of the proof releases all of it
        assert len(env.states) == 1
        for state in (s0, s1):
            err = env.run_tactic(state, "exact hp")
            assert isinstance(err, TacticError) and f"proof state {state.id} is no longer held" in err.message
        assert isinstance(env.run_tactic(other, "constructor"), TacticState)  # other proofs are untouched
        env.release(s1)  # releasing twice is harmless


def test_a_proof_is_released_through_its_evicted_root():
    from prover.states import StateTable

    gone = []
    table = StateTable(3, "X.max_states", on_key_gone=gone.append)
    root = table.add("root", key="thm")
    state = table.add("s0", root)
    for i in range(1, 5):  # a long search: its root falls out of the LRU while its leaves live on
        state = table.add(f"s{i}", state)
    assert len(table) == 3 and table.proofs == 1 and gone == []
    with pytest.raises(LookupError, match="proof state 0 was evicted.*at most 3 .*X.max_states"):
        table.get(root)
    table.release(root)  # what `search` does when it ends
    assert len(table) == 0 and table.proofs == 0 and gone == ["thm"]


@pytest.mark.parametrize("algorithm", ["best_first", "mcts", "sample"])
def test_every_search_releases_what_it_opened(algorithm):
    env = ToyEnv()
    gen = TableGenerator({r"step 0": [("exact step_zero", -0.1)], r"step \d+": [("skip", -0.1), ("apply step_succ", -0.2)]})
    proved = search(Theorem("s", "", "theorem s : step 2 :="), env, gen, SearchConfig(algorithm=algorithm, max_samples=2))
    assert proved.status == ("failed" if algorithm == "sample" else "proved")  # this table has no whole proofs
    assert env._states == {}

    class Broken(TableGenerator):
        def propose_tactics(self, theorem, state, n):
            raise RuntimeError("generator died")

    failed = search(Theorem("s", "", "theorem s : step 2 :="), env, Broken({}), SearchConfig(algorithm=algorithm))
    assert failed.status == ("failed" if algorithm == "sample" else "error")
    assert env._states == {} and env.released == (0 if algorithm == "sample" else 2)


# ---- Dojo --------------------------------------------------------------------------------------

class FakeDojo:
    """Stands in for `lean_dojo.Dojo` (a Lean process per theorem); answers with LeanDojo's own types."""

    open: set = set()

    def __init__(self, theorem, timeout=600, additional_imports=(), build_deps=True):
        import lean_dojo

        self.ld, self.steps = lean_dojo, 0

    def __enter__(self):
        FakeDojo.open.add(id(self))
        return self, self.ld.TacticState(pp="p q : Prop\n⊢ p ∧ q", id=0)

    def __exit__(self, *exc):
        FakeDojo.open.discard(id(self))

    def run_tac(self, state, tactic):
        self.steps += 1
        return self.ld.TacticState(pp=state.pp, id=self.steps)


@pytest.fixture
def dojo_env(tmp_path, monkeypatch):
    import lean_dojo

    from prover.dojo import DojoConfig, DojoEnv

    repo, bin_dir = tmp_path / "repo", tmp_path / "bin"
    (repo / ".git").mkdir(parents=True)
    (repo / "Foo.lean").write_text("theorem t (p q : Prop) : p ∧ q := sorry\n")
    bin_dir.mkdir()
    (bin_dir / "lake").write_text("#!/bin/sh\nexit 1\n")  # found, never run: check() is not used here
    (bin_dir / "lake").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(lean_dojo, "LeanGitRepo", lambda url, commit: (url, commit))
    monkeypatch.setattr(lean_dojo, "Theorem", lambda repo, file, name: name)
    monkeypatch.setattr(lean_dojo, "Dojo", FakeDojo)
    FakeDojo.open = set()

    def make(**config):
        return DojoEnv(DojoConfig(repo=str(repo), commit="abc", file="Foo.lean", **config))

    return make


def test_dojo_searches_release_states_and_close_their_lean_process(dojo_env):
    env = dojo_env()
    held, rss = run_searches(env, THM)
    assert held == [0] * SEARCHES and env.states.proofs == 0
    assert FakeDojo.open == set() and env._sessions == {}  # each theorem's Dojo closed with its last proof
    assert_flat(rss)


def test_dojo_without_release_is_held_to_max_states(dojo_env):
    env = dojo_env(max_states=100)
    first, lasts, rss = run_unreleased(env, THM)
    assert len(env.states) == 100
    assert_flat(rss)
    gone = env.run_tactic(first, "skip")
    assert isinstance(gone, TacticError) and "proof state 0 was evicted" in gone.message
    assert "DojoConfig.max_states" in gone.message
    assert len(FakeDojo.open) == 1  # the last proofs still have live states: the theorem's Dojo stays open
    assert isinstance(env.run_tactic(lasts[-1], "skip"), TacticState)
    for state in lasts:  # releasing an evicted state is a no-op; the held ones close the Dojo at the end
        env.release(state)
    assert FakeDojo.open == set() and len(env.states) == 0
