"""Verified rewards with the real math checker, the real sandbox and the real final check (Lean double)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from lean_double import NormNumLean  # noqa: E402

from workers.rl.rewards import RewardConfig, RewardFn  # noqa: E402
from workers.rl.tasks import Task, load_tasks, make_tiny_tasks  # noqa: E402


def math_task(answer="47"):
    return Task(id="m", kind="math", prompt="23+24=", answer=answer)


def test_math_reward_uses_equivalence_not_string_match():
    fn = RewardFn()
    assert fn(math_task(), "47").correct
    assert fn(math_task("1/2"), "\\boxed{0.5}").reward == 1.0
    assert fn(math_task(), "46").reward == 0.0
    wrong = fn(math_task(), "no idea")
    assert wrong.reward == 0.0 and not wrong.formatted


def test_format_weight_and_unfinished_completions():
    fn = RewardFn(RewardConfig(correct_weight=1.0, format_weight=0.1))
    assert fn(math_task(), "47").reward == pytest.approx(1.1)
    assert fn(math_task(), "46").reward == pytest.approx(0.1)
    # hitting max_new_tokens earns no format reward
    assert fn(math_task(), "47", finished=False).reward == pytest.approx(1.0)


def test_code_reward_runs_tests_in_the_sandbox():
    task = next(t for t in make_tiny_tasks(n=200) if t.kind == "code")
    fn = RewardFn(RewardConfig(timeout_s=5.0))
    assert fn(task, task.answer).correct
    assert fn(task, "x+1000").reward == 0.0
    assert fn(task, "(").detail.startswith("syntax error")
    hang = fn(task, "[0 for _ in iter(int, 1)][0]")  # loops forever: the sandbox's limit ends it
    assert hang.reward == 0.0


def test_code_reward_partial_fraction(shared_fixtures):
    task = Task(id="c", kind="code", prompt="def f(x):\n    return ",
                tests=["assert f(0) == 0", "assert f(2) == 4", "assert f(3) == 9"])
    fn = RewardFn(RewardConfig(code_partial=True, timeout_s=5.0))
    got = fn(task, "x * 2")  # right for 0 and 2 only
    assert got.reward == pytest.approx(2 / 3) and not got.correct
    mbpp = load_tasks(shared_fixtures / "code" / "mbpp.jsonl", limit=1)[0]
    reference = "R = 3\nC = 3\ndef min_cost(cost, m, n):\n    tc = [[0]*C for _ in range(R)]\n" \
        "    tc[0][0] = cost[0][0]\n    for i in range(1, m+1): tc[i][0] = tc[i-1][0] + cost[i][0]\n" \
        "    for j in range(1, n+1): tc[0][j] = tc[0][j-1] + cost[0][j]\n" \
        "    for i in range(1, m+1):\n        for j in range(1, n+1):\n" \
        "            tc[i][j] = min(tc[i-1][j-1], tc[i-1][j], tc[i][j-1]) + cost[i][j]\n    return tc[m][n]\n"
    assert RewardFn()(mbpp, "```python\n" + reference + "```").correct


def test_lean_reward_goes_through_the_final_check(shared_fixtures):
    task = load_tasks(shared_fixtures / "lean" / "minif2f" / "minif2f.jsonl", limit=1)[0]
    env = NormNumLean()
    fn = RewardFn(lean_env=env)
    assert fn(task, "norm_num").correct
    assert env.checked[-1].rstrip().endswith(":= by\n  norm_num")
    assert fn(task, "simp").reward == 0.0
    cheat = fn(task, "sorry")
    assert cheat.reward == 0.0 and "sorry" in cheat.detail
    broken = task.model_copy(update={"formal_statement": "theorem t : 1 = 1"})  # no ':=': no reward, a reason
    result = fn(broken, "norm_num")
    assert result.reward == 0.0 and "must end with ':='" in result.detail


def test_lean_task_without_project_says_what_to_pass(shared_fixtures):
    task = load_tasks(shared_fixtures / "lean" / "minif2f" / "minif2f.jsonl", limit=1)[0]
    with pytest.raises(ValueError, match="--project"):
        RewardFn()(task, "norm_num")
