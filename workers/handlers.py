"""The plain work each worker does on one item, tested without Ray; `workers.actors` wraps these.

Every handler returns a JSON-ready dict with a `status`; an exception inside a handler becomes
that item's `error` verdict (the job goes on), never a lost item.
"""
from __future__ import annotations

import dataclasses
import threading
import traceback
from typing import Any, Callable


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


class CoderHandler:
    """Grades code samples and checks math answers in this process (sandboxed by `coder`)."""

    def __init__(self):
        self._problems: dict[str, dict] = {}
        self._lock = threading.Lock()

    def problems(self, source: str) -> dict:
        with self._lock:
            if source not in self._problems:
                import coder

                self._problems[source] = coder.load_problems(source)
            return self._problems[source]

    def grade(self, item: dict, params: dict) -> dict:
        """Grade one {task_id, completion | solution} against params["problems"] ("humaneval" or a path)."""
        try:
            import coder

            source = params.get("problems", "humaneval")
            problems = self.problems(source)
            task_id = item["task_id"]
            if task_id not in problems:
                return {"status": "error", "passed": False, "detail": f"unknown task_id {task_id!r} in problems {source!r}"}
            limits = coder.Limits(**params.get("limits", {}))
            is_solution = item.get("completion") is None and item.get("solution") is not None
            code = item["solution"] if is_solution else item["completion"]
            verdict = to_jsonable(coder.grade_sample(problems[task_id], code, limits, is_solution=is_solution))
            if not isinstance(verdict, dict):
                verdict = {"status": str(verdict)}
            verdict["passed"] = verdict.get("status") == "passed"
            return verdict
        except Exception as exc:  # a sandbox failure is this item's verdict
            return error_result(exc, "grading failed")

    def check_math(self, item: dict, params: dict) -> dict:
        """Compare one {pred, ref} pair; status is equivalent/different/timeout/unparseable/error."""
        try:
            import coder

            verdict = to_jsonable(coder.check_answer(item["pred"], item["ref"], **params.get("options", {})))
            reason = str(verdict.get("reason", ""))
            verdict["status"] = ("equivalent" if verdict.get("equivalent")
                                 else reason if reason in ("timeout", "unparseable", "error") else "different")
            return verdict
        except Exception as exc:
            return error_result(exc, "answer check failed")


class ProverHandler:
    """Proves theorems with a Lean environment it owns; `generate` is how it reaches the model."""

    def __init__(self, lean_project: str | None, generate: Callable[[list[str], dict], list[dict]] | None = None):
        self.lean_project = lean_project
        self.generate = generate
        self._env = None
        self._env_error: str | None = None

    def env(self):
        if self._env is None and self._env_error is None:
            try:
                import prover

                self._env = prover.ReplEnv(prover.ReplConfig(project=self.lean_project))
            except Exception as exc:  # no Lean here: every item says so
                self._env_error = f"{type(exc).__name__}: {exc}"
        if self._env is None:
            raise RuntimeError(f"Lean environment unavailable: {self._env_error}")
        return self._env

    def prove(self, item: dict, params: dict) -> dict:
        """Search for a proof of one theorem dict {name, header, statement}; status proved/failed/error."""
        try:
            import prover

            theorem = prover.Theorem(
                name=item["name"], header=item.get("header", ""), statement=item["statement"],
                informal_prefix=item.get("informal_prefix", ""),
            )
            env = self.env()
            from .backends import ModelBackedGenerator

            generator = ModelBackedGenerator(self.generate, params.get("generation", {}))
            config = prover.SearchConfig(**params.get("search", {}))
            result = to_jsonable(prover.search(theorem, env, generator, config))
            if not isinstance(result, dict):
                result = {"result": result}
            result.setdefault("status", "proved" if result.get("proved") or result.get("success") else "failed")
            return result
        except Exception as exc:
            return error_result(exc, f"proving {item.get('name', '?')} failed")

    def close(self) -> None:
        if self._env is not None:
            try:
                self._env.close()
            except Exception:
                traceback.print_exc()
