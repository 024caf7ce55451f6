"""RL prompt sets: load math / code / Lean tasks from jsonl, or generate the embedded tiny task set.

jsonl rows (kind is inferred from the keys):
  math: {"question": ..., "answer": ...}
  code: {"prompt": ..., "tests": "assert f(1) == 2\n..." or [..]}   (MBPP's text + test_list too)
  lean: {"header": ..., "formal_statement": ...}                  (optional "name")
"""
from __future__ import annotations

import hashlib
import random
from pathlib import Path
from typing import Iterator, Literal

from proofcode_common import iter_jsonl
from pydantic import BaseModel

Kind = Literal["math", "code", "lean"]


class Task(BaseModel):
    """One RL prompt with what its reward needs (answer, tests or formal statement)."""

    id: str
    kind: Kind
    prompt: str
    answer: str | None = None
    tests: list[str] | None = None
    header: str | None = None
    formal_statement: str | None = None
    solution: str | None = None  # a worked solution ending in the answer (generated tasks only)


def load_tasks(path: str | Path, limit: int | None = None) -> list[Task]:
    """Read a jsonl prompt set; the kind of each row is inferred from its keys."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"prompt set {path} does not exist; pass a jsonl file (see docs/rl.md)")
    tasks: list[Task] = []
    for lineno, row in iter_jsonl(path):
        tasks.append(_task_from_row(row, f"{path.stem}-{lineno}", f"{path}:{lineno}"))
        if limit is not None and len(tasks) >= limit:
            break
    if not tasks:
        raise ValueError(f"prompt set {path} is empty")
    return tasks


def _task_from_row(row: dict, default_id: str, where: str) -> Task:
    task_id = str(row.get("id", row.get("task_id", row.get("name", default_id))))
    if "formal_statement" in row:
        from prover import normalize_statement

        try:  # refused here, with the row's place, rather than as a zero reward mid-run
            normalize_statement(str(row["formal_statement"]))
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from None
        header = row.get("header") or ""
        prompt = row.get("prompt") or f"{header}\n{row['formal_statement']}".strip()
        return Task(id=task_id, kind="lean", prompt=prompt, header=header, formal_statement=row["formal_statement"])
    if "question" in row and "answer" in row:
        return Task(id=task_id, kind="math", prompt=row["question"], answer=_final_answer(str(row["answer"])))
    if ("prompt" in row or "text" in row) and ("tests" in row or "test_list" in row):
        tests = row.get("tests", row.get("test_list"))
        tests = [t for t in tests.splitlines() if t.strip()] if isinstance(tests, str) else [str(t) for t in tests]
        prompt = row.get("prompt")
        if prompt is None:  # MBPP: the description plus the tests, as in the MBPP paper's prompt
            prompt = f"{row['text']}\nYour code should pass these tests:\n" + "\n".join(tests) + "\n"
        if row.get("test_setup_code"):
            tests = [row["test_setup_code"], *tests]
        return Task(id=task_id, kind="code", prompt=prompt, tests=tests)
    raise ValueError(
        f"{where}: cannot tell the task kind from keys {sorted(row)}; expected question+answer (math), "
        "prompt+tests (code) or header+formal_statement (lean)"
    )


def _final_answer(answer: str) -> str:
    # GSM8K keeps the final answer after '####'; other sets give it bare.
    return answer.rsplit("####", 1)[-1].strip()


# ---------------------------------------------------------------- the embedded tiny task set

_WORD_OPS = (("add", "+"), ("subtract", "-"), ("multiply by", "*"))


def _math_problem(rng: random.Random) -> tuple[str, str, str]:
    """(prompt, answer, worked solution). The worked solution does one digit at a time in brackets
    before the answer: `47+38=` -> `[7+8=15,4+3+1=8]85`. A tiny model cannot compute the answer
    reliably in one step, but it can execute the digit steps, so working it out is the skill that pays."""
    family = rng.choice(("add", "add", "sub", "mul", "linear"))
    if family == "add":
        a, b = rng.randint(10, 99), rng.randint(10, 99)
        u = a % 10 + b % 10
        tens = f"{a // 10}+{b // 10}" + ("+1" if u >= 10 else "")
        return f"{a}+{b}=", str(a + b), f"[{a % 10}+{b % 10}={u},{tens}={a // 10 + b // 10 + u // 10}]{a + b}"
    if family == "sub":
        a = rng.randint(20, 99)
        b = rng.randint(10, a - 1)
        if a % 10 >= b % 10:
            units, tens = f"{a % 10}-{b % 10}={a % 10 - b % 10}", f"{a // 10}-{b // 10}={a // 10 - b // 10}"
        else:  # borrow ten from the tens digit
            units = f"1{a % 10}-{b % 10}={10 + a % 10 - b % 10}"
            tens = f"{a // 10}-1-{b // 10}={a // 10 - 1 - b // 10}"
        return f"{a}-{b}=", str(a - b), f"[{units},{tens}]{a - b}"
    if family == "mul":
        a, b = rng.randint(10, 99), rng.randint(2, 9)
        p = (a % 10) * b
        return f"{a}*{b}=", str(a * b), f"[{a % 10}*{b}={p},{a // 10}*{b}+{p // 10}={a // 10 * b + p // 10}]{a * b}"
    x, a, b = rng.randint(1, 9), rng.randint(2, 9), rng.randint(1, 9)
    c = a * x + b  # linear equation solved for x
    return f"{a}x+{b}={c},x=", str(x), f"[{c}-{b}={c - b},{c - b}/{a}={x}]{x}"


def _code_problem(rng: random.Random) -> tuple[str, str, list[str]]:
    steps = [(rng.choice(_WORD_OPS), rng.randint(2, 9)) for _ in range(1 if rng.random() < 0.7 else 2)]
    words = " then ".join(f"{w} {n}" for (w, _), n in steps)
    expr = "x"
    for (_, op), n in steps:
        expr = f"x{op}{n}" if expr == "x" else f"({expr}){op}{n}"
    prompt = f"# f: {words}\ndef f(x):return "
    tests = [f"assert f({v})=={eval(expr, {'x': v})}" for v in (0, 3, 7)]  # expr is ours: digits and ops
    return prompt, expr, tests


def make_tiny_tasks(n: int = 12000, seed: int = 0, code_fraction: float = 0.1) -> list[Task]:
    """The embedded task set: arithmetic/linear equations (sympy-checked) and tiny Python functions (sandbox)."""
    rng = random.Random(seed)
    seen: set[str] = set()
    tasks: list[Task] = []
    for _ in range(50 * n):
        if len(tasks) == n:
            break
        if rng.random() < code_fraction:
            prompt, completion, tests = _code_problem(rng)
            task = Task(id="", kind="code", prompt=prompt, answer=completion, tests=tests)
        else:
            prompt, answer, worked = _math_problem(rng)
            task = Task(id="", kind="math", prompt=prompt, answer=answer, solution=worked)
        if prompt in seen:
            continue
        seen.add(prompt)
        task.id = f"tiny-{hashlib.sha1(prompt.encode()).hexdigest()[:10]}"
        tasks.append(task)
    if len(tasks) < n:
        raise ValueError(f"the tiny task families hold fewer than n={n} distinct problems; ask for fewer")
    return tasks


def is_heldout(task: Task, fraction: float = 0.1) -> bool:
    """Stable split on the prompt text, so the held-out set never depends on generation order."""
    h = int(hashlib.sha1(task.prompt.encode()).hexdigest()[:8], 16)
    return h < fraction * 0xFFFFFFFF


def split_tasks(tasks: list[Task], fraction: float = 0.1) -> tuple[list[Task], list[Task]]:
    """(train, heldout) by `is_heldout`."""
    train = [t for t in tasks if not is_heldout(t, fraction)]
    held = [t for t in tasks if is_heldout(t, fraction)]
    return train, held


def sft_text(task: Task, worked: bool = False) -> str:
    """The reference completion of a generated task: the bare answer, or (`worked`) its worked solution."""
    if task.answer is None:
        raise ValueError(f"task {task.id} has no reference completion")
    return task.solution if worked and task.solution else task.answer


class PromptStream:
    """Deterministic, resumable order over tasks: epoch e is a permutation seeded by (seed, e).

    The cursor is the number of prompts already handed out, so a checkpoint restores the exact order.
    """

    def __init__(self, tasks: list[Task], seed: int = 0, cursor: int = 0):
        if not tasks:
            raise ValueError("no training prompts: the prompt set (after the held-out split) is empty")
        self.tasks = tasks
        self.seed = seed
        self.cursor = cursor

    def _order(self, epoch: int) -> list[int]:
        order = list(range(len(self.tasks)))
        random.Random(f"{self.seed}-{epoch}").shuffle(order)
        return order

    def next_batch(self, size: int) -> list[Task]:
        """The next `size` prompts; advances the cursor."""
        out = []
        for _ in range(size):
            epoch, i = divmod(self.cursor, len(self.tasks))
            if i == 0 or not hasattr(self, "_cache") or self._cache[0] != epoch:
                self._cache = (epoch, self._order(epoch))
            out.append(self.tasks[self._cache[1][i]])
            self.cursor += 1
        return out

    def __iter__(self) -> Iterator[Task]:
        while True:
            yield from self.next_batch(1)
