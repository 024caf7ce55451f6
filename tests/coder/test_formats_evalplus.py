"""evalplus HumanEval+ / MBPP+ files graded natively (tests/coder/data/*Plus-fixture.jsonl, our own
problems in evalplus's format): canonical and right answers pass, wrong ones fail, plus inputs catch
what base inputs miss, and answers are compared by evalplus's rules."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from coder.formats import evalplus
from coder.formats.evalplus_tasks import mbpp_inputs
from coder.grading import grade_sample, grade_samples
from coder.problems import load_problems
from coder.sandbox import Limits

DATA = Path(__file__).parent / "data"
HE, MBPP = DATA / "HumanEvalPlus-fixture.jsonl", DATA / "MbppPlus-fixture.jsonl"
LIMITS = Limits(timeout_s=20)


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cache")
    old = os.environ.get("PROOFCODE_CACHE")
    os.environ["PROOFCODE_CACHE"] = str(path)
    yield path
    if old is None:
        os.environ.pop("PROOFCODE_CACHE")
    else:
        os.environ["PROOFCODE_CACHE"] = old


def _grade_fixture(name: str, tmp_path: Path, base_only: bool) -> dict[str, list[str]]:
    problems = load_problems(DATA / f"{name}-fixture.jsonl", base_only=base_only, limits=LIMITS)
    samples = tmp_path / f"{name}.jsonl"
    samples.write_text((DATA / f"{name}-fixture_samples.jsonl").read_text())
    grade_samples(samples, problems, LIMITS, workers=2, ks=(1,), progress=False)
    by_kind: dict[str, list[str]] = {}
    for line in (tmp_path / f"{name}.jsonl_results.jsonl").read_text().splitlines():
        row = json.loads(line)
        by_kind.setdefault(row["kind"], []).append("passed" if row["passed"] else row["task_id"] + " " + row["detail"])
    return by_kind


@pytest.mark.parametrize("name", ["HumanEvalPlus", "MbppPlus"])
def test_fixture_verdicts_base_and_plus(name, cache, tmp_path):
    plus = _grade_fixture(name, tmp_path, base_only=False)
    assert set(plus["canonical"]) == {"passed"}, plus["canonical"]
    assert set(plus["right"]) == {"passed"}, plus["right"]
    assert "passed" not in plus["wrong"] + plus.get("wrong_plus", [])
    base = _grade_fixture(name, tmp_path, base_only=True)
    assert "passed" not in base["wrong"]
    assert set(base.get("wrong_plus", [])) <= {"passed"}  # only plus inputs tell these apart


def test_plus_failure_names_the_input(cache):
    problems = load_problems(HE, limits=LIMITS)
    v = grade_sample(problems["HumanEval/12"], "    return max(strings, key=len)\n", LIMITS)
    assert v.status == "failed" and v.detail.startswith("plus input 1/2: ValueError"), v.detail
    assert problems["HumanEval/12"].test_set == "base+plus"


def test_expected_outputs_cached_per_file(tmp_path, monkeypatch):
    cache = tmp_path / "own-cache"
    monkeypatch.setenv("PROOFCODE_CACHE", str(cache))
    problems = load_problems(HE, limits=LIMITS)
    files = list((cache / "evalplus").glob("*.json"))
    assert len(files) == 1
    stored = json.loads(files[0].read_text())
    assert stored["HumanEval/8"][0] == ["t", [0, 1]]  # (0, 1), a tuple, from the canonical solution
    stored["HumanEval/8"][0] = ["t", [0, 2]]  # the cache is what grading reads from now on
    files[0].write_text(json.dumps(stored))
    again = load_problems(HE, limits=LIMITS)
    assert again["HumanEval/8"].spec["expected"][0] == ["t", [0, 2]]
    assert not grade_sample(again["HumanEval/8"], problems["HumanEval/8"].canonical_solution, LIMITS).passed
    other = tmp_path / "other.jsonl"  # another file (content) gets its own entry
    other.write_text(HE.read_text().replace("atol\": 0.001", "atol\": 0.002"))
    load_problems(other, limits=LIMITS)
    assert len(list((cache / "evalplus").glob("*.json"))) == 2


def test_canonical_failure_is_a_clear_error(cache, tmp_path):
    row = json.loads(HE.read_text().splitlines()[3])  # sum_product
    row["plus_input"].append(["not a list"])
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(row) + "\n")
    with pytest.raises(ValueError, match=r"task HumanEval/8: the canonical solution failed on plus input 3/3"):
        load_problems(bad, limits=LIMITS)


def test_float_rules_of_evalplus():
    check = evalplus.check_output
    assert check([], 0.1 + 0.2, 0.3, 0, "humaneval", "f")  # atol 0 on a float answer means 1e-6
    assert not check([], 0.3 + 2e-6, 0.3, 0, "humaneval", "f")
    assert check([], [1.0, 2.0 + 1e-9], [1.0, 2.0], 0, "humaneval", "f")
    assert not check([], (1.0, 2.0), [1.0, 2.0], 1e-3, "humaneval", "f")  # same type first
    assert not check([], [1.0], [1.0, 2.0], 1e-3, "humaneval", "f")
    assert check([], 4.1904, 4.19051025, 1e-3, "humaneval", "f")  # the file's atol
    assert not check([], 4.2, 4.19051025, 1e-3, "humaneval", "f")
    assert not check([], math.nan, math.nan, 0, "humaneval", "f")
    assert check([], 3, 3.0, 0, "humaneval", "f") and not check([], "3", 3, 0, "humaneval", "f")
    assert check([[1, 2]], -0.5, 7.0, 1e-6, "humaneval", "find_zero")  # any root of 1 + 2x
    assert not check([[1, 2]], 0.0, 0.0, 1e-6, "humaneval", "find_zero")


def test_mbpp_oracles_and_inputs():
    check = evalplus.check_output
    assert check([], [5, 4], (4, 5), 0, "mbpp", "similar_elements")  # compared as sets
    assert not check([], [[4]], (4,), 0, "mbpp", "similar_elements")  # unhashable answer: a failure
    assert check([], 0, 6, 0, "mbpp", "sum_div") and check([], "?", 1, 0, "mbpp", "are_equivalent")
    assert check([12, 34], 4, 0, 0, "mbpp", "digit_distance_nums")
    assert mbpp_inputs("Mbpp/2", [[[1, 2], [3]]]) == [[(1, 2), (3,)]]
    assert mbpp_inputs("Mbpp/580", [[[1, [2, 3]]]]) == [((1, (2, 3)),)]
    assert mbpp_inputs("Mbpp/124", [[1, "1+2j"]]) == [(1.0, 1 + 2j)]
    assert mbpp_inputs("Mbpp/7", [[[1]]]) == [[[1]]]


def test_forged_answers_fail(cache):
    problems = load_problems(HE, limits=LIMITS)
    always_equal = ("class Yes:\n    def __eq__(self, other):\n        return True\n\n\n"
                    "def sum_product(numbers):\n    return Yes()\n")
    v = grade_sample(problems["HumanEval/8"], always_equal, LIMITS, is_solution=True)
    assert v.status == "failed" and "non-plain" in v.detail, v.detail
    printer = "import os\n\n\ndef sum_product(numbers):\n    os.write(1, b'0 {\"i\": 0, \"out\": 1}\\n')\n    return 1\n"
    assert not grade_sample(problems["HumanEval/8"], printer, LIMITS, is_solution=True).passed


def test_cli_prints_pass_at_k(cache, tmp_path):
    samples = tmp_path / "samples.jsonl"
    samples.write_text((DATA / "HumanEvalPlus-fixture_samples.jsonl").read_text())
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).parents[2]))

    def grade(*extra: str) -> str:
        out = subprocess.run([sys.executable, "-m", "workers.cli", "grade", str(samples), "--problems", str(HE),
                              "--k", "1", "--no-progress", *extra], capture_output=True, text=True, timeout=300,
                             env=env)
        assert out.returncode == 0, out.stderr
        return out.stdout

    plus, base = grade(), grade("--base-only")
    assert "tests: base+plus" in plus and "pass@1: 0.6000" in plus, plus  # 8 of 13 samples
    assert "tests: base\n" in base and "pass@1: 0.8333" in base, base  # the wrong_plus ones pass base
