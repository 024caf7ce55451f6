"""Verified rewards: math answer equivalence, code tests in the sandbox, Lean's final check, format.

`RewardFn` is a plain class (tested without Ray); `workers.rl.actors.RewardActor` wraps it so reward
calls run on the pool while the rollout actors keep generating.
"""
from __future__ import annotations

import ast
import re
from typing import Any

from pydantic import BaseModel, Field

from .tasks import Task


class RewardConfig(BaseModel):
    """Composite reward: correct_weight * correctness + format_weight * well-formedness."""

    correct_weight: float = 1.0
    format_weight: float = Field(0.0, description="small, or the policy learns the format instead of the task")
    code_partial: bool = Field(False, description="code reward = fraction of tests passed instead of all-or-nothing")
    timeout_s: float = Field(10.0, gt=0, description="limit for one reward call (sandbox run, Lean check)")
    lean_project: str | None = Field(None, description="Lean project for Lean prompt sets (a REPL pool is started there)")


class RewardResult(BaseModel):
    reward: float
    correct: bool
    formatted: bool
    detail: str = ""


class RewardFn:
    """Scores completions of tasks; `lean_env` is any `prover.ProofEnv` (a REPL pool, or a test double)."""

    def __init__(self, config: RewardConfig | None = None, lean_env: Any = None):
        self.config = config or RewardConfig()
        self.lean_env = lean_env

    def __call__(self, task: Task, completion: str, finished: bool = True) -> RewardResult:
        """Reward of one completion; `finished` is False when generation hit max_new_tokens."""
        if task.kind == "math":
            correct, formatted, detail = self._math(task, completion)
        elif task.kind == "code":
            correct, formatted, detail = self._code(task, completion)
        else:
            correct, formatted, detail = self._lean(task, completion)
        formatted = formatted and finished
        c = self.config
        return RewardResult(
            reward=c.correct_weight * float(correct) + c.format_weight * float(formatted),
            correct=correct >= 1.0,
            formatted=formatted,
            detail=detail,
        )

    def _math(self, task: Task, completion: str) -> tuple[float, bool, str]:
        from coder import check_answer, extract_answer

        pred = extract_answer(completion.strip())  # \boxed{}, '####', 'the answer is', else the last number
        if not pred:
            return 0.0, False, "no answer found"
        verdict = check_answer(pred, task.answer or "", timeout=self.config.timeout_s)
        return float(verdict.equivalent), True, verdict.reason

    def _code(self, task: Task, completion: str) -> tuple[float, bool, str]:
        from coder import Limits, run_tests

        body = _strip_fences(completion)
        # a whole program (MBPP style) stands alone; otherwise the completion continues the prompt's code
        standalone = "```" in completion or body.lstrip().startswith(("def ", "import ", "from ", "class "))
        program = body if standalone else task.prompt + body
        try:
            ast.parse(program)
        except SyntaxError as exc:
            return 0.0, False, f"syntax error: {exc.msg}"
        limits = Limits(timeout_s=self.config.timeout_s)
        if not self.config.code_partial:
            verdict = run_tests(program, "\n".join(task.tests or []), limits)
            return float(verdict.passed), True, verdict.status
        passed = sum(run_tests(program, t, limits).passed for t in task.tests or [])
        return passed / max(1, len(task.tests or [])), True, f"{passed}/{len(task.tests or [])} tests"

    def _lean(self, task: Task, completion: str) -> tuple[float, bool, str]:
        if self.lean_env is None:
            raise ValueError(
                f"task {task.id} is a Lean task but no Lean environment is configured: "
                "pass --project PATH_TO_LEAN_PROJECT (a lake project with the REPL built)"
            )
        from prover import Theorem, final_check, normalize_statement

        try:  # the statement ends at ':='; miniF2F rows end in ':= by' or ':= by sorry'
            statement = normalize_statement(task.formal_statement or "")
        except ValueError as exc:
            return 0.0, False, f"task {task.id}: {exc}"
        proof = _strip_fences(completion).strip()
        if not proof:
            return 0.0, False, "empty proof"
        if not proof.startswith("by"):
            proof = "by\n  " + proof
        theorem = Theorem(name=task.id, header=task.header or "", statement=statement)
        verdict = final_check(theorem, proof, self.lean_env, timeout=self.config.timeout_s)
        return float(verdict.accepted), True, "; ".join(verdict.reasons)


def _strip_fences(text: str) -> str:
    m = re.search(r"```(?:\w+)?\n(.*?)(```|$)", text, re.S)
    return m.group(1) if m else text
