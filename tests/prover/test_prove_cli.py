"""`proofcode prove` end to end: the real CLI, the pooled ReplEnv over C1's fake REPL subprocess."""
from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from workers.cli import build_parser, main

FAKE_REPL = shlex.join([sys.executable, str(Path(__file__).parent / "fake_repl.py")])
LEAN_FILE = """import Mathlib

theorem and_intro (p q : Prop) (hp : p) (hq : q) : p ∧ q := by
  sorry

/-- Adding zero. -/
theorem add_zero_right (x : Nat) : x + 0 = x := by sorry

theorem already (x : Nat) : x = x := rfl
"""


def test_prove_lean_file_through_the_repl_and_resume(tmp_path, capsys):
    source = tmp_path / "todo.lean"
    source.write_text(LEAN_FILE)
    out = tmp_path / "out.jsonl"
    argv = ["prove", str(source), "--repl-command", FAKE_REPL, "-o", str(out), "--workers", "2",
            "--budget-seconds", "60"]
    assert main(argv) == 0
    records = {r["name"]: r for r in map(json.loads, out.read_text().splitlines())}
    assert sorted(records) == ["add_zero_right", "and_intro"]
    for record in records.values():
        assert record["status"] == "proved" and record["proof"].startswith("by\n  ")
        assert record["reasons"] == [] and record["lean_calls"] >= 3 and record["generator"] == "builtin"
    assert "proved 2/2; results in" in capsys.readouterr().err
    assert main(argv) == 0  # everything is recorded: nothing to do
    assert "proved 0/0; 2 already done" in capsys.readouterr().err
    assert len(out.read_text().splitlines()) == 2


def test_prove_jsonl_with_sample_search_to_stdout(tmp_path, capsys):
    rows = [{"name": "t", "header": "import Mathlib\n", "formal_statement": "theorem t (a b : Nat) : a + b = b + a := by\n"}]
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join(map(json.dumps, rows)) + "\n")
    assert main(["prove", str(source), "--repl-command", FAKE_REPL, "--search", "sample", "--max-samples", "4"]) == 0
    captured = capsys.readouterr()
    record = json.loads(captured.out.splitlines()[0])
    assert record["name"] == "t" and record["status"] == "proved" and record["algorithm"] == "sample"
    assert record["samples"] <= 4 and "proved 1/1" in captured.err


def test_without_lean_one_clear_message_no_traceback(tmp_path, shared_fixtures):
    minif2f = shared_fixtures / "lean" / "minif2f" / "minif2f.jsonl"
    project = tmp_path / "proj"
    shutil.copytree(shared_fixtures / "lean" / "repl" / "Mathlib", project)
    proofcode = shutil.which("proofcode") or ""
    command = [proofcode] if proofcode else [sys.executable, "-m", "workers.cli"]
    done = subprocess.run(command + ["prove", str(minif2f), "--project", str(project)],
                          capture_output=True, text=True, timeout=120, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("proofcode prove: error: ") and "lake" in lines[0]


def test_bad_input_and_options_are_named(tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"name": "a", "formal_statement": "theorem a : True :="}\n{"name": "b"}\n')
    assert main(["prove", str(bad), "--repl-command", FAKE_REPL]) == 2
    assert f"{bad}:2: missing or non-string field(s) formal_statement" in capsys.readouterr().err
    assert main(["prove", str(bad), "--generator", "openai"]) == 2
    assert "--generator openai needs --openai-url" in capsys.readouterr().err


def test_server_flag_is_declared_for_the_dispatcher():
    args = build_parser().parse_args(["prove", "x.jsonl", "--server", "http://127.0.0.1:8000"])
    assert args.server == "http://127.0.0.1:8000" and args.func.__name__ == "run_prove"
    assert build_parser().parse_args(["prove", "x.jsonl"]).server is None


def test_prove_with_openai_generator_and_mcts(tmp_path, capsys):
    sys.path.insert(0, str(Path(__file__).parent))
    from test_generators import _choices, _Server

    server = _Server(lambda body, k: (200, _choices(("constructor", [-0.1]), ("exact hp", [-0.2]),
                                                    ("exact hq", [-0.3]))))
    try:
        source = tmp_path / "todo.lean"
        source.write_text(LEAN_FILE)
        out = tmp_path / "out.jsonl"
        assert main(["prove", str(source), "--repl-command", FAKE_REPL, "--generator", "openai",
                     "--openai-url", server.url, "--openai-api-key", "secret", "--search", "mcts",
                     "--parallel", "2", "--limit", "1", "-o", str(out)]) == 0
    finally:
        server.close()
    (record,) = map(json.loads, out.read_text().splitlines())
    assert record["name"] == "and_intro" and record["status"] == "proved" and record["algorithm"] == "mcts"
    assert set(record["tactics"]) <= {"constructor", "exact hp", "exact hq"} and record["generator"] == "openai"
    assert server.requests and all(r["auth"] == "Bearer secret" for r in server.requests)
