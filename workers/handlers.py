"""The plain work each worker does on one item, tested without Ray; `workers.actors` wraps these.

Every handler returns a JSON-ready dict with a `status`; an exception inside a handler becomes
that item's `error` verdict (the job goes on), never a lost item.
"""
from __future__ import annotations

import dataclasses
import json
import tempfile
import threading
import traceback
from collections import OrderedDict
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator


def to_jsonable(obj: Any) -> Any:
    """Verdicts and results from the other packages as plain JSON values."""
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set)):
        return [to_jsonable(v) for v in obj]
    for method in ("to_dict", "model_dump", "as_dict"):
        fn = getattr(obj, method, None)
        if callable(fn):
            return to_jsonable(fn())
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return to_jsonable({f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)})
    return str(obj)


def error_result(exc: BaseException, what: str) -> dict:
    """An item's verdict when its handler raised: names the exception, keeps the job alive."""
    return {"status": "error", "passed": False, "detail": f"{what}: {type(exc).__name__}: {exc}"}


def load_problem_source(params: dict) -> dict:
    """coder's problems by task id for a grading job's params: "humaneval", a server path, or rows inline."""
    import coder

    source = params.get("problems", "humaneval")
    options = dict(format=params.get("format", "auto"), base_only=params.get("base_only", False),
                   limits=coder.Limits(**params.get("limits", {})))
    if not isinstance(source, list):
        return coder.load_problems(source, **options)
    with tempfile.TemporaryDirectory() as tmp:  # a file: evalplus caches expected outputs by the file's bytes
        path = Path(tmp) / "problems.jsonl"
        path.write_text("".join(json.dumps(row) + "\n" for row in source))
        return coder.load_problems(path, **options)


class CoderHandler:
    """Grades code samples and checks math answers in this process (sandboxed by `coder`)."""

    def __init__(self):
        self._problems: dict[str, dict] = {}
        self._lock = threading.Lock()

    def problems(self, params: dict) -> dict:
        """Problems by task id for a job's params (cached by the inline rows' digest, else by name and options)."""
        source = params.get("problems", "humaneval")
        key = params.get("problems_digest") if isinstance(source, list) else str(source)
        key = f"{key}|{params.get('format', 'auto')}|{params.get('base_only', False)}"
        with self._lock:
            if key not in self._problems:
                self._problems[key] = load_problem_source(params)
            return self._problems[key]

    def grade(self, item: dict, params: dict) -> dict:
        """Grade one {task_id, completion | solution} against the job's problems (coder.GradingJob fields)."""
        try:
            import coder

            problems = self.problems(params)
            task_id = item["task_id"]
            if task_id not in problems:
                source = params.get("problems", "humaneval")
                what = "the inline problems" if isinstance(source, list) else repr(source)
                return {"status": "error", "passed": False, "detail": f"unknown task_id {task_id!r} in problems {what}"}
            limits = coder.Limits(**params.get("limits", {}))
            is_solution = item.get("completion") is None and item.get("solution") is not None
            code = item["solution"] if is_solution else item["completion"]
            verdict = coder.grade_sample(problems[task_id], code, limits, is_solution=is_solution,
                                         verdicts=params.get("verdicts", "compatible"))
            return {**to_jsonable(verdict), "passed": verdict.passed}
        except Exception as exc:  # a sandbox failure is this item's verdict
            return error_result(exc, "grading failed")

    def check_math(self, item: dict, params: dict) -> dict:
        """Compare one {pred, ref} pair; status is equivalent/different/timeout/unparseable/error."""
        try:
            import coder

            options = params.get("options", params)  # jobs stored before the registry kept them under "options"
            verdict = to_jsonable(coder.check_answer(item["pred"], item["ref"], timeout=options.get("timeout", 5.0),
                                                     policy=coder.AnswerPolicy(**options.get("policy", {}))))
            reason = str(verdict.get("reason", ""))
            verdict["status"] = ("equivalent" if verdict.get("equivalent")
                                 else reason if reason in ("timeout", "unparseable", "error") else "different")
            return verdict
        except Exception as exc:
            return error_result(exc, "answer check failed")


class ProverHandler:
    """Proves theorems in Lean environments it owns (the `max_projects` most recently used projects);
    `generate` reaches the model worker."""

    def __init__(self, lean_project: str | None, generate: Callable[[list[str], dict], list[dict]] | None = None,
                 repl_pool_size: int = 1, repl_command: list[str] | None = None, max_projects: int = 2):
        if max_projects < 1:
            raise ValueError(f"max_projects must be at least 1, got {max_projects}")
        self.lean_project = lean_project
        self.repl_command = repl_command
        self.generate = generate
        self.repl_pool_size = repl_pool_size
        self.max_projects = max_projects
        self._envs: OrderedDict = OrderedDict()  # project -> environment, least recently used first
        self._in_use: dict = {}  # project -> searches using its environment now
        self._lock = threading.Lock()

    @contextmanager
    def env(self, project: str | None) -> Iterator:
        """The Lean environment for `project` while the caller searches; idle ones beyond max_projects close."""
        with self._lock:
            if project not in self._envs:
                import prover

                self._envs[project] = prover.ReplEnv(prover.ReplConfig(
                    project=project, repl_command=self.repl_command, pool_size=self.repl_pool_size))
            self._envs.move_to_end(project)
            self._in_use[project] = self._in_use.get(project, 0) + 1
            env = self._envs[project]
            evicted = self._evict()
        self._close(evicted)
        try:
            yield env
        finally:
            with self._lock:
                self._in_use[project] -= 1
                evicted = self._evict()
            self._close(evicted)

    def _evict(self) -> list:
        """Under the lock: drop the least recently used idle environments beyond max_projects; the dropped."""
        evicted = []
        for project in list(self._envs):
            if len(self._envs) <= self.max_projects:
                break
            if not self._in_use.get(project):
                evicted.append(self._envs.pop(project))
                self._in_use.pop(project, None)
        return evicted

    @staticmethod
    def _close(envs: list) -> None:
        for env in envs:  # outside the lock: closing Lean processes takes a while
            try:
                env.close()
            except Exception:
                traceback.print_exc()

    def generator(self, params: dict):
        import prover

        if params.get("generator", "model") == "builtin":
            return prover.BuiltinGenerator()
        from .backends import ModelBackedGenerator

        return ModelBackedGenerator(self.generate, params.get("generation", {}))

    def prove(self, item: dict, params: dict) -> dict:
        """Search a proof of one theorem {name, header, statement}; the record `proofcode prove` writes."""
        import prover

        name = item.get("name", "?")
        search = prover.SearchConfig(**params.get("search", {}))
        base = {"algorithm": search.algorithm, "generator": params.get("generator", "model")}
        try:
            theorem = prover.Theorem(name=item["name"], header=item.get("header", ""), statement=item["statement"],
                                     informal_prefix=item.get("informal_prefix", ""))
            with self.env(params.get("project") or self.lean_project) as env:
                result = to_jsonable(prover.search(theorem, env, self.generator(params), search))
            return {**result, **base, "passed": result.get("status") == "proved"}
        except Exception as exc:  # no Lean, a broken project: this theorem's error, the job goes on
            err = error_result(exc, f"proving {name} failed")
            return {**err, "proof": None, "error": err["detail"], **base}

    def close(self) -> None:
        with self._lock:
            envs, self._envs = list(self._envs.values()), OrderedDict()
        self._close(envs)
