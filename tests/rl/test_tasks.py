"""Prompt sets: jsonl loading of each kind, the generated tiny set, held-out split, resumable order."""
from __future__ import annotations

import json

import pytest

from workers.rl.tasks import PromptStream, load_tasks, make_tiny_tasks, split_tasks


def test_loads_real_gsm8k_and_mbpp_rows(shared_fixtures):
    math = load_tasks(shared_fixtures / "math" / "gsm8k_test.jsonl", limit=3)
    assert [t.kind for t in math] == ["math"] * 3
    assert math[0].answer == "18"  # the part after '####'
    code = load_tasks(shared_fixtures / "code" / "mbpp.jsonl", limit=2)
    assert code[0].kind == "code" and code[0].tests and code[0].tests[0].startswith("assert")


def test_loads_lean_rows_and_rejects_unknown_ones(tmp_path, shared_fixtures):
    lean = load_tasks(shared_fixtures / "lean" / "minif2f" / "minif2f.jsonl", limit=1)[0]
    assert lean.kind == "lean" and lean.formal_statement.startswith("theorem") and "Mathlib" in lean.header
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"text": "hello"}) + "\n")
    with pytest.raises(ValueError, match=r"bad.jsonl:1: cannot tell the task kind"):
        load_tasks(bad)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_tasks(tmp_path / "missing.jsonl")
    no_assign = tmp_path / "no_assign.jsonl"  # prover.normalize_statement refuses it, naming the row
    no_assign.write_text(json.dumps({"header": "", "formal_statement": "theorem t : 1 = 1"}) + "\n")
    with pytest.raises(ValueError, match=r"no_assign.jsonl:1: formal_statement must end with ':='"):
        load_tasks(no_assign)


def test_tiny_tasks_are_deterministic_unique_and_split_stably():
    a, b = make_tiny_tasks(n=500, seed=3), make_tiny_tasks(n=500, seed=3)
    assert [t.prompt for t in a] == [t.prompt for t in b]
    assert len({t.prompt for t in a}) == 500
    assert {t.kind for t in a} == {"math", "code"}
    train, held = split_tasks(a)
    assert 20 < len(held) < 90 and not {t.prompt for t in train} & {t.prompt for t in held}
    # the split depends on the prompt only, not on which other tasks were generated
    _, held_small = split_tasks(a[:250])
    assert {t.prompt for t in held_small} <= {t.prompt for t in held}


def test_code_tasks_reference_passes_their_own_tests():
    code_tasks = [t for t in make_tiny_tasks(n=300) if t.kind == "code"][:20]
    assert len(code_tasks) == 20 and all(t.tests for t in code_tasks)
    for t in code_tasks:  # each test is an assert statement; exec raises on a wrong reference
        namespace: dict = {}
        exec(t.prompt + t.answer, namespace)  # our own generated code, not model output
        for test in t.tests:
            exec(test, namespace)


def test_prompt_stream_resumes_with_the_same_order():
    tasks = make_tiny_tasks(n=50)
    full = PromptStream(tasks, seed=7)
    first = [t.id for t in full.next_batch(30)]
    rest = [t.id for t in full.next_batch(40)]  # crosses into the second epoch
    resumed = PromptStream(tasks, seed=7, cursor=30)
    assert [t.id for t in resumed.next_batch(40)] == rest
    assert sorted(first[:30] + rest[:20]) == sorted(t.id for t in tasks)  # epoch 1 is a permutation
    with pytest.raises(ValueError, match="empty"):
        PromptStream([])


def test_worked_solutions_are_correct_digit_steps_ending_in_the_answer():
    import re

    from coder import extract_answer

    math_tasks = [t for t in make_tiny_tasks(n=2000) if t.kind == "math"]
    families = {next(op for op in ("x", "+", "-", "*") if op in t.prompt) for t in math_tasks}
    assert families == {"x", "+", "-", "*"}
    for t in math_tasks:
        body, final = re.fullmatch(r"\[(.*)\](-?\d+)", t.solution).groups()
        assert final == t.answer and extract_answer(t.solution) == t.answer
        for step in body.split(","):  # each step is true arithmetic on at most two-digit numbers
            lhs, rhs = step.split("=")
            assert eval(lhs.replace("/", "//")) == int(rhs), (t.prompt, step)  # our own generated digits
        if "x" in t.prompt:  # ax+b=c,x=
            a, b, c = map(int, re.fullmatch(r"(\d)x\+(\d)=(\d+),x=", t.prompt).groups())
            assert a * int(t.answer) + b == c
        else:
            assert eval(t.prompt.rstrip("=")) == int(t.answer)


def test_sft_records_drill_the_worked_solution_without_choosing_it():
    import random

    from workers.rl.make_tiny import _sft_record

    task = next(t for t in make_tiny_tasks(n=50) if t.kind == "math")
    rng = random.Random(0)
    drills = [_sft_record(task, rng, worked_fraction=0.0, drill_fraction=1.0) for _ in range(3)]
    assert drills[0] == {"prompt": task.prompt + "[", "completion": task.solution[1:]}
    plain = [_sft_record(task, rng, worked_fraction=0.0, drill_fraction=0.0) for _ in range(20)]
    assert all(r == {"prompt": task.prompt, "completion": task.answer} for r in plain)
    mixed = [_sft_record(task, rng, worked_fraction=0.5, drill_fraction=0.0)["completion"] for _ in range(200)]
    assert 60 < sum(c == task.solution for c in mixed) < 140 and set(mixed) == {task.solution, task.answer}
