"""LiveCodeBench release files graded natively (tests/coder/data/LiveCodeBench-fixture.jsonl: our own
problems in its format): stdin/stdout and functional cases, its output rules, private cases decoded
without unpickling anything."""
from __future__ import annotations

import base64
import json
import os
import pickle
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from coder.formats.livecodebench import decode_test_cases, stdout_mismatch
from coder.grading import grade_sample, grade_samples
from coder.problems import load_problems
from coder.sandbox import Limits

DATA = Path(__file__).parent / "data"
LCB = DATA / "LiveCodeBench-fixture.jsonl"
LIMITS = Limits(timeout_s=20)


@pytest.fixture(scope="module")
def problems():
    return load_problems(LCB)


def test_fixture_verdicts(problems, tmp_path):
    samples = tmp_path / "samples.jsonl"
    samples.write_text((DATA / "LiveCodeBench-fixture_samples.jsonl").read_text())
    grade_samples(samples, problems, LIMITS, workers=2, ks=(1,), progress=False)
    rows = [json.loads(line) for line in (tmp_path / "samples.jsonl_results.jsonl").read_text().splitlines()]
    for row in rows:
        assert row["passed"] == (row["kind"] in ("canonical", "right")), row
    assert {r["task_id"] for r in rows if r["kind"] == "wrong"} == {"abc901_a", "abc901_b", "2999", "3001"}


def test_private_cases_are_graded(problems):
    assert problems["2999"].spec["n_public"] == 1 and len(problems["2999"].spec["cases"]) == 3
    only_public = "class Solution:\n    def twoSum(self, nums, target):\n        return [0, 1]\n"
    v = grade_sample(problems["2999"], only_public, LIMITS)
    assert v.status == "failed" and v.detail.startswith("private case 2/3: wrong answer"), v.detail


def test_stdout_rules():
    assert stdout_mismatch("6 \n3", "6\n3\n") is None  # trailing spaces, missing final newline
    assert stdout_mismatch("\n\n6\n3\n\n\n", "6\n3") is None  # blank lines around the whole output
    assert stdout_mismatch("6\r\n3\r\n", "6\n3\n") is None
    assert stdout_mismatch("1.50  2e1", "1.5 20") is None  # token by token, as exact decimals
    assert stdout_mismatch("0.333333333", "0.3333333333") is not None  # no tolerance beyond that
    assert stdout_mismatch("6\n\n3", "6\n3") == "3 output line(s), expected 2"
    assert stdout_mismatch("Yes  No", "Yes No") is not None  # inner spacing of words matters
    assert stdout_mismatch("1  2", "1 2") is None  # but not between numbers
    assert stdout_mismatch("sNaN", "snan") is not None  # comparing signalling NaNs raises: a mismatch


def test_functional_comparison(problems):
    def grade(body: str):
        program = "class Solution:\n    def countVowels(self, s):\n        v = sum(c in 'aeiou' for c in s)\n" + body
        return grade_sample(problems["3001"], program, LIMITS)

    assert grade("        return (v, v > len(s) - v)\n").passed  # a tuple answer counts as a list
    assert grade("        return [v, 1 if v > len(s) - v else 0]\n").passed  # Python's 1 == True
    assert not grade("        return [v, v > len(s) - v, None]\n").passed
    v = grade("        return {v}\n")  # a set is not the list [4, false]
    assert v.status == "failed" and "expected [4, False], got {4}" in v.detail, v.detail
    v = grade("        raise KeyError('boom')\n")
    assert v.status == "runtime_error" and "KeyError" in v.detail


def test_function_without_solution_class(problems):
    plain = "def countVowels(s):\n    v = sum(c in 'aeiou' for c in s)\n    return [v, v > len(s) - v]\n"
    assert grade_sample(problems["3001"], plain, LIMITS).passed
    v = grade_sample(problems["3001"], "class Solution:\n    pass\n", LIMITS)
    assert v.status == "runtime_error" and "countVowels" in v.detail, v.detail


def test_private_cases_decoded_without_unpickling(tmp_path):
    cases = [{"input": "1\n", "output": "1\n", "testtype": "stdin"}]
    packed = base64.b64encode(zlib.compress(pickle.dumps(json.dumps(cases)))).decode()
    assert decode_test_cases(packed, "t", "private_test_cases") == cases
    assert decode_test_cases(json.dumps(cases), "t", "private_test_cases") == cases
    marker = tmp_path / "unpickled"

    class Exploit:
        def __reduce__(self):
            return (Path.touch, (marker,))

    evil = base64.b64encode(zlib.compress(pickle.dumps(Exploit()))).decode()
    with pytest.raises(ValueError, match="not a single string; refusing"):
        decode_test_cases(evil, "t", "private_test_cases")
    assert not marker.exists()
    wrapped = base64.b64encode(zlib.compress(pickle.dumps([json.dumps(cases)]))).decode()  # a list, not a str
    with pytest.raises(ValueError, match="not a single string"):
        decode_test_cases(wrapped, "t", "private_test_cases")
    with pytest.raises(ValueError, match="neither JSON nor base64"):
        decode_test_cases("%%% not base64", "t", "private_test_cases")


def test_bad_rows_name_the_task(tmp_path):
    row = json.loads(LCB.read_text().splitlines()[2])
    row["public_test_cases"] = json.dumps([{"input": "[1, 2\n3", "output": "[0]", "testtype": "functional"}])
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(row) + "\n")
    with pytest.raises(ValueError, match=r"bad.jsonl: task 2999: functional test case 1 is not JSON"):
        load_problems(bad)


def test_cli_prints_pass_at_k(tmp_path):
    samples = tmp_path / "samples.jsonl"
    samples.write_text((DATA / "LiveCodeBench-fixture_samples.jsonl").read_text())
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).parents[2]))
    out = subprocess.run([sys.executable, "-m", "workers.cli", "grade", str(samples), "--problems", str(LCB),
                          "--k", "1", "--no-progress"], capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr
    assert "pass@1: 0.6250" in out.stdout, out.stdout  # 2/3, 2/4, 2/3, 2/3 of each task's samples
    refused = subprocess.run([sys.executable, "-m", "workers.cli", "grade", str(samples), "--problems", str(LCB),
                              "--base-only"], capture_output=True, text=True, timeout=300, env=env)
    assert refused.returncode == 2 and "--base-only applies to evalplus problem files only" in refused.stderr
