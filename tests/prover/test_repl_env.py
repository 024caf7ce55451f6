"""ReplEnv against the fake REPL (a real subprocess): sessions, header reuse, faults, recycling, threads."""
from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

import pytest

from prover import ProofFinished, TacticError, TacticState, Theorem
from prover.repl import ReplConfig, ReplEnv

FAKE = str(Path(__file__).parent / "fake_repl.py")
HEADER = "import Mathlib\nopen Nat\n"
THM = Theorem("t1", HEADER, "theorem t1 (p q : Prop) (hp : p) (hq : q) : p ∧ q :=")


def make_env(tmp_path, *fake_args, **config) -> tuple[ReplEnv, Path]:
    log = tmp_path / "commands.log"
    cmd = [sys.executable, FAKE, "--log", str(log), *fake_args]
    return ReplEnv(ReplConfig(repl_command=cmd, **config)), log


def imports(log: Path) -> int:
    if not log.exists():
        return 0
    return sum("import " in json.loads(line).get("cmd", "") for line in log.read_text().splitlines())


def test_start_tactics_and_finish(tmp_path):
    env, _ = make_env(tmp_path)
    with env:
        s0 = env.start(THM)
        assert isinstance(s0, TacticState)
        assert s0.goals == ("p q : Prop\nhp : p\nhq : q\n⊢ p ∧ q",)
        s1 = env.run_tactic(s0, "constructor")
        assert isinstance(s1, TacticState) and len(s1.goals) == 2
        assert isinstance(env.run_tactic(s1, "no_such_tactic"), TacticError)
        s2 = env.run_tactic(s1, "exact hp")
        assert isinstance(s2, TacticState) and s2.goals == ("p q : Prop\nhp : p\nhq : q\n⊢ q",)
        done = env.run_tactic(s2, "exact hq")
        assert done == ProofFinished(tactics=("constructor", "exact hp", "exact hq"))
        # states are persistent: an earlier state can be branched again
        assert isinstance(env.run_tactic(s0, "sorry"), TacticError)
        err = env.run_tactic(s0, "exact my_fake_premise")
        assert isinstance(err, TacticError) and "Unknown identifier" in err.message


def test_header_is_imported_once_per_process_and_lru_evicted(tmp_path):
    env, log = make_env(tmp_path, pool_size=1)
    with env:
        for i in range(3):
            assert isinstance(env.start(Theorem(f"a{i}", HEADER, f"theorem a{i} : 1 = 1 :=")), TacticState)
        assert imports(log) == 1
        other = "import Mathlib.Tactic\n"
        assert isinstance(env.start(Theorem("b", other, "theorem b : 1 = 1 :=")), TacticState)
        assert imports(log) == 2 and env.pool.spawned == 2  # the single slot went to the new header
        assert [h for h, _ in env.pool.alive_workers()] == [other]


def test_bad_header_and_bad_statement_are_errors_not_crashes(tmp_path):
    env, _ = make_env(tmp_path)
    with env:
        res = env.start(Theorem("x", HEADER, "theorem x : 1 = 1"))
        assert isinstance(res, TacticError) and "must end with ':='" in res.message
        broken = "import Mathlib\ntheorem h : 1 = 1 := by fake_error\n"
        res = env.start(Theorem("y", broken, "theorem y : 1 = 1 :="))
        assert isinstance(res, TacticError) and "header failed to elaborate" in res.message
        assert "fake_error" in res.message
        spawned = env.pool.spawned
        out = env.check("theorem y : 1 = 1 := by rfl", broken)
        assert out.errors and "header failed" in out.errors[0].text
        assert env.pool.spawned == spawned  # a header Lean rejected is not imported again
        assert isinstance(env.start(THM), TacticState)  # the pool still works


@pytest.mark.parametrize("fault, expect", [
    ("fake_hang", "no answer within"),
    ("fake_crash", "exited"),
    ("fake_garbage", "non-JSON"),
    ("fake_eof", "exited"),
])
def test_faults_are_reported_and_the_session_goes_on(tmp_path, fault, expect):
    env, _ = make_env(tmp_path, command_timeout=1.5)
    with env:
        s0 = env.start(THM)
        err = env.run_tactic(s0, fault)
        assert isinstance(err, TacticError) and expect in err.message and fault in err.message
        assert err.timeout == (fault == "fake_hang")
        # the process was replaced and the state rebuilt by replaying the theorem
        s1 = env.run_tactic(s0, "constructor")
        assert isinstance(s1, TacticState) and len(s1.goals) == 2
        assert env.pool.spawned == 2


def test_slow_import_times_out_then_succeeds_with_more_time(tmp_path):
    env, _ = make_env(tmp_path, "--import-delay", "2", import_timeout=0.5)
    with env:
        res = env.start(THM)
        assert isinstance(res, TacticError) and res.timeout and "import Mathlib" in res.message
    env, _ = make_env(tmp_path, "--import-delay", "0.5", import_timeout=10)
    with env:
        assert isinstance(env.start(THM), TacticState)


def test_memory_limit_kills_the_process(tmp_path):
    env, _ = make_env(tmp_path, memory_limit_mb=60, max_rss_growth_mb=None)
    with env:
        s0 = env.start(THM)
        err = env.run_tactic(s0, "fake_grow; fake_slow")
        assert isinstance(err, TacticError) and "memory limit" in err.message
        assert isinstance(env.run_tactic(s0, "constructor"), TacticState)


def test_recycled_on_memory_growth_and_command_count(tmp_path):
    env, _ = make_env(tmp_path, memory_limit_mb=None, max_rss_growth_mb=30)
    with env:
        s0 = env.start(THM)
        assert isinstance(env.run_tactic(s0, "fake_grow"), TacticState)  # answered, then recycled
        assert env.pool.recycled == 1
        assert isinstance(env.run_tactic(s0, "constructor"), TacticState)
    env, _ = make_env(tmp_path, max_commands=3)
    with env:
        state = env.start(THM)
        for tactic in ["skip", "skip", "constructor", "exact hp"]:
            state = env.run_tactic(state, tactic)
            assert isinstance(state, TacticState), state
        assert env.pool.recycled >= 1
        assert env.run_tactic(state, "exact hq") == ProofFinished(("skip", "skip", "constructor", "exact hp", "exact hq"))


def test_threads_share_the_pool(tmp_path):
    env, log = make_env(tmp_path, pool_size=2)
    results, errors = [], []

    def prove(i: int) -> None:
        try:
            thm = Theorem(f"t{i}", HEADER, f"theorem t{i} (p q : Prop) (hp : p) (hq : q) : p ∧ q :=")
            s = env.start(thm)
            for tac in ["constructor", "exact hp", "exact hq"]:
                s = env.run_tactic(s, tac)
            results.append(s)
        except Exception as exc:  # surfaced below
            errors.append(exc)

    with env:
        threads = [threading.Thread(target=prove, args=(i,)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    assert not errors
    assert len(results) == 6 and all(isinstance(r, ProofFinished) for r in results)
    assert imports(log) <= 2


def test_check_reports_messages_sorries_and_axioms(tmp_path):
    env, _ = make_env(tmp_path)
    with env:
        ok = env.check("theorem c1 : 2 + 2 = 4 := by\n  norm_num", HEADER, print_axioms=["c1"])
        assert ok.errors == [] and ok.sorries == []
        assert ok.axioms == {"c1": ["Classical.choice", "Quot.sound", "propext"]}
        bad = env.check("theorem c2 : 2 + 2 = 4 := by\n  sorry", HEADER, print_axioms=["c2"])
        assert bad.sorries == ["⊢ 2 + 2 = 4"] and bad.axioms == {"c2": ["sorryAx"]}
        missing = env.check("theorem c3 : 1 = 1 := by\n  fake_error", HEADER, print_axioms=["c3"])
        assert missing.errors and "c3" not in missing.axioms
        hung = env.check("theorem c4 : 1 = 1 := by fake_hang", HEADER, timeout=1)
        assert hung.timed_out
        crashed = env.check("theorem c5 : 1 = 1 := by fake_crash", HEADER)
        assert crashed.crashed and "fake_crash" in crashed.crashed
        assert env.check("theorem c6 : 1 = 1 := by rfl", HEADER, print_axioms=["c6"]).axioms == {"c6": []}


def test_unknown_state_is_an_error(tmp_path):
    env, _ = make_env(tmp_path)
    with env:
        res = env.run_tactic(TacticState(id=999, pp="⊢ True"), "trivial")
        assert isinstance(res, TacticError) and "unknown proof state" in res.message


def test_replacement_is_imported_in_the_background(tmp_path):
    env, log = make_env(tmp_path, command_timeout=1, pool_size=1)
    with env:
        s0 = env.start(THM)
        assert env.run_tactic(s0, "fake_hang").timeout
        for _ in range(300):  # the replacement imports without anyone asking for it
            if imports(log) == 2 and env.pool.alive_workers():
                break
            threading.Event().wait(0.1)
        assert imports(log) == 2 and [h for h, _ in env.pool.alive_workers()] == ["import Mathlib\n"]
        assert isinstance(env.run_tactic(s0, "constructor"), TacticState)
        assert env.pool.spawned == 2 and imports(log) == 2  # it was used, not a third process


def test_launcher_noise_before_the_first_answer_is_ignored(tmp_path):
    # `lake exe repl` can print build progress on stdout before the REPL itself starts
    launcher = f"echo 'Building repl'; echo; echo '[1/2] Compiling REPL.Main'; exec {sys.executable} {FAKE}"
    with ReplEnv(ReplConfig(repl_command=["/bin/sh", "-c", launcher])) as env:
        assert isinstance(env.start(THM), TacticState)


def test_headers_with_the_same_imports_share_a_process(tmp_path):
    env, log = make_env(tmp_path, pool_size=1)
    with env:
        for i, opens in enumerate(["open Nat\n", "open Real\n", "open Nat\n", "lemma aux : 1 = 1 := by rfl\n"]):
            thm = Theorem(f"s{i}", "import Mathlib\n" + opens, f"theorem s{i} : 1 = 1 :=")
            assert isinstance(env.start(thm), TacticState)
        assert imports(log) == 1 and env.pool.spawned == 1
        sent = [json.loads(line) for line in log.read_text().splitlines()]
        assert sum(c.get("cmd") == "open Nat\n" for c in sent) == 1  # each header's rest elaborated once
        assert all(c.get("env") == 0 for c in sent if c.get("cmd") in ("open Nat\n", "open Real\n"))


def test_without_the_split_each_header_pays_its_own_import(tmp_path):
    # the comparison setting of benchmarks/bench_prover.py (Kimina Lean Server's keying by header)
    env, log = make_env(tmp_path, pool_size=1)
    env.pool.split_imports = False
    with env:
        for i, opens in enumerate(["open Nat\n", "open Real\n", "open Nat\n"]):
            assert isinstance(env.start(Theorem(f"s{i}", "import Mathlib\n" + opens, f"theorem s{i} : 1 = 1 :=")),
                              TacticState)
        assert imports(log) == 3 and env.pool.spawned == 3


def test_an_evicted_process_is_stopped(tmp_path):
    env, _ = make_env(tmp_path, pool_size=1)
    with env:
        assert isinstance(env.start(THM), TacticState)
        (_, old_pid), = env.pool.alive_workers()
        assert isinstance(env.start(Theorem("b", "import Mathlib.Tactic\n", "theorem b : 1 = 1 :=")), TacticState)
        for _ in range(100):  # it is closed in the background
            if not Path(f"/proc/{old_pid}").exists() or "Z" in Path(f"/proc/{old_pid}/stat").read_text().split()[2]:
                break
            time.sleep(0.05)
        else:
            raise AssertionError(f"the evicted REPL {old_pid} is still running")


def test_fake_repl_delays_and_timing_log(tmp_path):
    timing = tmp_path / "timing.log"
    env, _ = make_env(tmp_path, "--import-delay", "0.3", "--command-delay", "0.1", "--timing", str(timing))
    with env:
        assert isinstance(env.start(THM), TacticState)
    lines = [json.loads(line) for line in timing.read_text().splitlines()]
    assert "startup" in lines[0] and 0 < lines[0]["startup"] < 30
    assert [t["import"] for t in lines[1:]] == [True, False, False]  # imports, `open Nat`, the statement
    assert lines[1]["seconds"] >= 0.4 and all(t["seconds"] >= 0.1 for t in lines[2:])


def test_split_header():
    from prover.repl_pool import split_header

    minif2f = "import Mathlib\nimport Aesop\n\nset_option maxHeartbeats 400000\n\nopen BigOperators Real Nat Topology Rat\n\n"
    assert split_header(minif2f) == ("import Mathlib\nimport Aesop\n\n",
                                     "set_option maxHeartbeats 400000\n\nopen BigOperators Real Nat Topology Rat\n\n")
    assert split_header("import Mathlib") == ("import Mathlib", "")
    assert split_header("-- a comment\nimport Mathlib\nopen Nat") == ("-- a comment\nimport Mathlib\n", "open Nat")
    assert split_header("open Nat\n") == ("", "open Nat\n")
    odd = "/- license -/\nimport Mathlib\nopen Nat\n"
    assert split_header(odd) == (odd, "")
