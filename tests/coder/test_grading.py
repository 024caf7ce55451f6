"""Grading against real HumanEval/MBPP problems, pass@k, resumable results and the CLI."""
from __future__ import annotations

import json
import math
from itertools import combinations

import pytest

from coder.grading import grade_sample, grade_samples, pass_at_k, results_path_for
from coder.problems import Problem, load_problems, parse_problem
from coder.sandbox import Limits

LIMITS = Limits(timeout_s=10)


@pytest.fixture(scope="module")
def humaneval():
    return load_problems("humaneval")


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_pass_at_k_matches_brute_force():
    for n, c, k in [(5, 2, 1), (5, 2, 3), (10, 0, 4), (10, 10, 1), (7, 3, 7), (200, 13, 100)]:
        if n > 12:
            expected = 1 - math.comb(n - c, k) / math.comb(n, k)
        else:  # fraction of k-subsets that contain at least one passing sample
            subsets = list(combinations([True] * c + [False] * (n - c), k))
            expected = sum(any(s) for s in subsets) / len(subsets)
        assert pass_at_k(n, c, k) == pytest.approx(expected)
    with pytest.raises(ValueError, match="at least 3 samples"):
        pass_at_k(2, 1, 3)


def test_all_canonical_solutions_pass_and_return_none_passes_none(humaneval, tmp_path):
    rows = []
    for p in humaneval.values():
        rows.append({"task_id": p.task_id, "completion": p.canonical_solution})
        rows.append({"task_id": p.task_id, "completion": "    return None\n"})
    samples = _write(tmp_path / "samples.jsonl", rows)
    summary = grade_samples(samples, humaneval, LIMITS, workers=2, ks=[1, 2], progress=False)
    results = [json.loads(line) for line in results_path_for(samples).read_text().splitlines()]
    assert len(results) == 2 * len(humaneval) == 328
    canonical = [r for r in results if r["completion"] != "    return None\n"]
    nones = [r for r in results if r["completion"] == "    return None\n"]
    assert [r["task_id"] for r in canonical if not r["passed"]] == []
    assert [r["task_id"] for r in nones if r["passed"]] == []
    assert summary["pass@1"] == pytest.approx(0.5) and summary["pass@2"] == pytest.approx(1.0)
    assert summary["verdicts"]["passed"] == 164
    assert all("seccomp" in r["protections"] for r in results)


def test_resume_skips_graded_samples_and_recovers_torn_line(humaneval, tmp_path):
    ids = list(humaneval)[:3]
    samples = _write(tmp_path / "s.jsonl", [{"task_id": t, "completion": humaneval[t].canonical_solution} for t in ids])
    grade_samples(samples, humaneval, LIMITS, workers=1, ks=[1], progress=False)
    results = results_path_for(samples)
    lines = results.read_text().splitlines()
    marked = json.loads(lines[0])
    marked["detail"] = "from the first run"
    # Simulate a crash: first result kept, the second torn mid-line, the third never written.
    results.write_text(json.dumps(marked) + "\n" + lines[1][:25])
    summary = grade_samples(samples, humaneval, LIMITS, workers=1, ks=[1], progress=False)
    rows = [json.loads(line) for line in results.read_text().splitlines()]
    assert [r["line"] for r in rows] == [1, 2, 3]
    assert rows[0]["detail"] == "from the first run"  # not regraded
    assert summary["pass@1"] == 1.0 and summary["n_samples"] == 3
    # An edited samples file: the changed line is graded again, the others are kept.
    _write(samples, [{"task_id": t, "completion": humaneval[t].canonical_solution if i else "    return None\n"}
                     for i, t in enumerate(ids)])
    summary = grade_samples(samples, humaneval, LIMITS, workers=1, ks=[1], progress=False)
    rows = [json.loads(line) for line in results.read_text().splitlines()]
    assert [r["passed"] for r in rows] == [False, True, True]


@pytest.mark.parametrize("line, message", [
    ("{not json", "s.jsonl:2: not valid JSON"),
    ('{"completion": "x"}', "s.jsonl:2: a sample needs a 'task_id'"),
    ('{"task_id": "HumanEval/0"}', "s.jsonl:2: a sample needs a string 'completion' or 'solution'"),
    ('{"task_id": "Nope/1", "completion": ""}', "s.jsonl:2: unknown task_id 'Nope/1'"),
])
def test_bad_sample_lines_name_the_line_and_grade_nothing(humaneval, tmp_path, line, message):
    samples = tmp_path / "s.jsonl"
    samples.write_text(json.dumps({"task_id": "HumanEval/0", "completion": "    return True\n"}) + "\n" + line + "\n")
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        grade_samples(samples, humaneval, LIMITS, progress=False)
    assert not results_path_for(samples).exists()


def test_evalplus_solution_field(humaneval):
    p = humaneval["HumanEval/2"]
    v = grade_sample(p, p.prompt + p.canonical_solution, LIMITS, is_solution=True)
    assert v.passed, v
    wrong = grade_sample(p, "def truncate_number(number):\n    return number\n", LIMITS, is_solution=True)
    assert wrong.status == "failed" and "tests line" in wrong.detail


def test_mbpp_native_format(shared_fixtures):
    problems = load_problems(shared_fixtures / "code" / "mbpp.jsonl")
    for task_id in ("2", "11", "17"):
        p = problems[task_id]
        assert grade_sample(p, p.canonical_solution, LIMITS, is_solution=True).passed
        assert not grade_sample(p, f"def {p.entry_point}(*args):\n    return None\n", LIMITS).passed


def test_stdio_problems():
    p = parse_problem({"task_id": "sum", "inputs": ["2 2\n", "5 7\n"], "outputs": ["4\n", "12\n"]})
    assert p.kind == "stdio"
    good = grade_sample(p, "a, b = map(int, input().split())\nprint(a + b)\n", LIMITS)
    assert good.passed and "2 case(s)" in good.detail
    bad = grade_sample(p, "a, b = map(int, input().split())\nprint(a * b)\n", LIMITS)
    assert bad.status == "failed" and bad.detail.startswith("case 2/2")
    apps = parse_problem({"task_id": 7, "input_output": json.dumps({"inputs": ["x\n"], "outputs": ["x\n"]})})
    assert apps.task_id == "7" and grade_sample(apps, "print(input())", LIMITS).passed


def test_problem_file_errors_name_the_line(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps({"task_id": "a", "prompt": "", "entry_point": "f", "test": ""}) + "\n"
                    + json.dumps({"task_id": "b", "prompt": "def f():\n"}) + "\n")
    with pytest.raises(ValueError, match=r"p.jsonl:2: task b: missing field\(s\) entry_point, test"):
        load_problems(path)
    with pytest.raises(FileNotFoundError, match="--benchmark humaneval"):
        load_problems(tmp_path / "absent.jsonl")


def test_problem_program_concatenates_prompt():
    p = Problem(task_id="t", prompt="def f():\n", entry_point="f", test="")
    assert p.program("    return 1\n") == "def f():\n    return 1\n"
    assert p.program("def f(): return 2\n", is_solution=True) == "def f(): return 2\n"
