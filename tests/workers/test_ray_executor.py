"""`proofcode grade --ray` and `prove --ray`: the same command on a Ray worker pool writes what it writes locally."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from svc_helpers import canonical_samples  # noqa: E402

from workers.cli import main  # noqa: E402

pytestmark = pytest.mark.ray
FAKE_REPL = f"{sys.executable} {Path(__file__).resolve().parents[1] / 'prover' / 'fake_repl.py'}"


def _rows(path: Path, drop: str) -> list[dict]:
    return [{k: v for k, v in json.loads(x).items() if k != drop} for x in path.read_text().splitlines()]


def test_grade_and_prove_on_a_ray_pool_write_the_local_files(ray_cluster, tmp_path, capsys):
    samples = [*canonical_samples(2), {"task_id": "HumanEval/1", "completion": "    return []\n"}]
    theorems = [{"name": "comm", "header": "", "formal_statement": "theorem comm (a b : Nat) : a + b = b + a := by"},
                {"name": "zero", "header": "", "formal_statement": "theorem zero (x : Nat) : x + 0 = x := by sorry"}]
    source = tmp_path / "theorems.jsonl"
    source.write_text("".join(json.dumps(t) + "\n" for t in theorems))
    graded, proved = {}, {}
    for where, extra in (("local", []), ("ray", ["--ray"])):
        (tmp_path / where).mkdir()
        path = tmp_path / where / "samples.jsonl"
        path.write_text("".join(json.dumps(s) + "\n" for s in samples))
        assert main(["grade", str(path), "--no-progress", "--workers", "1", "--verdicts", "strict", *extra]) == 0
        graded[where] = _rows(Path(f"{path}_results.jsonl"), "time_s")
        out = tmp_path / where / "proofs.jsonl"
        assert main(["prove", str(source), "--repl-command", FAKE_REPL, "--search", "sample",
                     "--samples-per-round", "2", "-o", str(out), *extra]) == 0
        proved[where] = _rows(out, "seconds")
    assert graded["ray"] == graded["local"] and [r["passed"] for r in graded["ray"]] == [True, True, False]
    assert proved["ray"] == proved["local"] and all(r["status"] == "proved" for r in proved["ray"])
    assert "proved 2/2" in capsys.readouterr().err
