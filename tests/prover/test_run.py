"""prove_all on the toy env: statuses, jsonl written as theorems finish, restart skips done names."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from toy_env import ToyEnv  # noqa: E402

from prover.generators import BuiltinGenerator  # noqa: E402
from prover.protocol import EnvError, Theorem  # noqa: E402
from prover.run import ProveConfig, job_names, prove_all, summary  # noqa: E402
from prover.proof_search import SearchConfig  # noqa: E402


def toy(name: str, goal: str) -> Theorem:
    return Theorem(name, "", f"theorem {name} : {goal} :=")


THEOREMS = [toy("easy", "2 + 2 = 4 ∧ True"), toy("hopeless", "False ∨ False"), Theorem("broken", "", "example :=")]


def read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_prove_all_writes_one_line_per_theorem_and_resumes(tmp_path):
    out = tmp_path / "results" / "out.jsonl"
    config = ProveConfig(output=str(out), workers=2, progress=False, search=SearchConfig(max_expansions=20))
    env = ToyEnv()
    records = prove_all(THEOREMS, config, env=env, generator=BuiltinGenerator())
    assert not env.closed  # an env passed in belongs to the caller
    by_name = {r["name"]: r for r in read(out)}
    assert sorted(by_name) == ["broken", "easy", "hopeless"] and len(records) == 3
    easy = by_name["easy"]
    assert easy["status"] == "proved" and easy["proof"] == "by\n  constructor\n  simp\n  simp"
    assert easy["expansions"] >= 2 and easy["lean_calls"] > easy["expansions"] and easy["seconds"] >= 0
    assert by_name["hopeless"]["status"] == "failed" and by_name["hopeless"]["proof"] is None
    assert by_name["broken"]["status"] == "error" and "did not elaborate" in by_name["broken"]["error"]
    assert summary(records) == "proved 1/3 (failed 1, error 1)"

    # A rerun skips what is recorded; a line cut off by a kill is ignored and the new record starts clean.
    with out.open("a") as f:
        f.write('{"name": "new", "sta')
    more = THEOREMS + [toy("new", "True")]
    again = prove_all(more, config, env=ToyEnv(), generator=BuiltinGenerator())
    assert [r["name"] for r in again] == ["new"] and again[0]["status"] == "proved"
    lines = out.read_text().splitlines()
    assert lines[3] == '{"name": "new", "sta' and json.loads(lines[4])["name"] == "new"
    assert prove_all(more, config, env=ToyEnv(), generator=BuiltinGenerator()) == []
    fresh = prove_all(more[:1], config.model_copy(update={"resume": False}), env=ToyEnv(), generator=BuiltinGenerator())
    assert [r["name"] for r in fresh] == ["easy"]


def test_repeated_names_get_distinct_records():
    theorems = [toy("a", "True"), toy("a", "2 = 2"), toy("b", "True"), toy("a", "True")]
    assert job_names(theorems) == ["a", "a#2", "b", "a#3"]


def test_env_error_stops_the_run_and_keeps_finished_records(tmp_path):
    class LeanGone(ToyEnv):
        def start(self, theorem, timeout=None):
            if theorem.name == "second":
                raise EnvError("the Lean REPL died and could not be restarted: lake not found")
            return super().start(theorem, timeout)

    out = tmp_path / "out.jsonl"
    config = ProveConfig(output=str(out), progress=False)
    with pytest.raises(EnvError, match="could not be restarted"):
        prove_all([toy("first", "True"), toy("second", "True"), toy("third", "True")], config,
                  env=LeanGone(), generator=BuiltinGenerator())
    assert [r["name"] for r in read(out)] == ["first"]


def test_config_errors_name_the_missing_option():
    with pytest.raises(ValueError, match="--generator model needs --model"):
        ProveConfig(generator="model")
    with pytest.raises(ValueError, match="--generator openai needs --openai-url"):
        ProveConfig(generator="openai")
    with pytest.raises(ValueError, match="--backend dojo needs --repo, --commit and --file"):
        ProveConfig(backend="dojo")
