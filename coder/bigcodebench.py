"""BigCodeBench-style problems: `test` is a unittest.TestCase module, solutions define `task_func`.

Fields read: task_id, test, entry_point (default task_func), and the prompt a completion continues:
complete_prompt, else code_prompt; canonical_solution is kept. Samples give `solution` (the whole
program, BigCodeBench's own samples) or `completion` (appended to the prompt).
"""
from __future__ import annotations

from coder.problems import Problem


def is_bigcodebench(row: dict) -> bool:
    return isinstance(row, dict) and ("complete_prompt" in row or "code_prompt" in row)


def parse_bigcodebench(row: dict) -> Problem:
    task_id = str(row["task_id"])
    test = row.get("test")
    if not isinstance(test, str) or "TestCase" not in test:
        raise ValueError(f"task {task_id}: BigCodeBench 'test' must be a unittest.TestCase module")
    prompt = row.get("complete_prompt") or row.get("code_prompt") or ""
    return Problem(task_id=task_id, prompt=prompt, entry_point=row.get("entry_point") or "task_func", test=test,
                   canonical_solution=row.get("canonical_solution", ""))
