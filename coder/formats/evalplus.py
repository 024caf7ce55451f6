"""evalplus HumanEval+ / MBPP+ problem files, graded as evalplus grades them.

Fields read: `task_id`, `prompt`, `entry_point`, `canonical_solution`, `base_input`, `plus_input`,
`atol` (the rest, e.g. `contract`, `test`, `assertion`, are not used: evalplus grades by differential
testing against the canonical solution). Expected outputs are the canonical solution's answers,
computed once in the sandbox and cached per problem file.
"""
from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from coder.formats import evalplus_tasks as tasks
from coder.formats.driver import call_function, short
from coder.formats.dispatch import is_evalplus  # noqa: F401 (told apart where formats are dispatched)
from coder.problems import Problem
from coder.sandbox import Limits, Verdict
from coder.sandbox.plain import decode, encode

_CACHE_VERSION = "1"  # bump when how expected outputs are computed changes
_GROUND_TRUTH_TIMEOUT_S = 60.0  # at least this long for the canonical solution on all of a task's inputs


def _dataset(task_id: str) -> str:
    return "mbpp" if task_id.lower().startswith("mbpp") else "humaneval"


def _task(row: dict) -> dict:
    """The fields this format reads from one row, checked; inputs as evalplus passes them."""
    task_id = str(row.get("task_id", ""))
    missing = [k for k in ("task_id", "prompt", "entry_point", "canonical_solution", "base_input") if k not in row]
    if missing:
        raise ValueError(f"task {task_id or '?'}: missing field(s) {', '.join(missing)} (evalplus format: task_id, "
                         "prompt, entry_point, canonical_solution, base_input, plus_input, atol)")
    base, plus = row["base_input"], row.get("plus_input") or []
    if not isinstance(base, list) or not isinstance(plus, list) or not all(isinstance(i, list) for i in base + plus):
        raise ValueError(f"task {task_id}: base_input and plus_input must be lists of argument lists")
    if _dataset(task_id) == "mbpp":
        base, plus = tasks.mbpp_inputs(task_id, base), tasks.mbpp_inputs(task_id, plus)
    return {"task_id": task_id, "prompt": row["prompt"], "entry_point": row["entry_point"],
            "canonical_solution": row["canonical_solution"], "atol": float(row.get("atol") or 0),
            "inputs": [encode(args) for args in base + plus], "n_base": len(base)}


def load(rows: list[dict], path: Path, *, base_only: bool = False, limits: Limits | None = None,
         workers: int | None = None, cache_dir: Path | None = None) -> dict[str, Problem]:
    """Problems by task id; `base_only` grades `base_input` alone (evalplus's HumanEval / MBPP numbers)."""
    parsed = [_task(row) for row in rows]
    expected = expected_outputs(parsed, path, limits or Limits(), workers=workers, cache_dir=cache_dir)
    problems = {}
    for t in parsed:
        n = t["n_base"] if base_only else len(t["inputs"])
        spec = {"dataset": _dataset(t["task_id"]), "atol": t["atol"], "n_base": t["n_base"],
                "inputs": t["inputs"][:n], "expected": expected[t["task_id"]][:n]}
        problems[t["task_id"]] = Problem(task_id=t["task_id"], kind="evalplus", prompt=t["prompt"],
                                         entry_point=t["entry_point"], canonical_solution=t["canonical_solution"],
                                         test_set="base" if base_only else "base+plus", spec=spec)
    return problems


def cache_root() -> Path:
    """Where expected outputs are kept: $PROOFCODE_CACHE, else $XDG_CACHE_HOME/proofcode, else ~/.cache/proofcode."""
    if os.environ.get("PROOFCODE_CACHE"):
        return Path(os.environ["PROOFCODE_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "proofcode"


def expected_outputs(parsed: list[dict], path: Path, limits: Limits, *, workers: int | None = None,
                     cache_dir: Path | None = None) -> dict[str, list]:
    """The canonical solution's (plain-encoded) answer to every input, by task; cached per file content."""
    digest = hashlib.sha256(Path(path).read_bytes() + _CACHE_VERSION.encode()).hexdigest()[:32]
    cache = (cache_dir or cache_root() / "evalplus") / f"{digest}.json"
    try:
        return json.loads(cache.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        pass
    timeout = max(limits.timeout_s, _GROUND_TRUTH_TIMEOUT_S)
    gt_limits = limits.model_copy(update={"timeout_s": timeout, "cpu_time_s": timeout + 1})
    with ThreadPoolExecutor(workers or os.cpu_count() or 1) as pool:
        answers = dict(pool.map(lambda t: (t["task_id"], _ground_truth(t, gt_limits)), parsed))
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_name(f"{cache.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(answers), encoding="utf-8")
    os.replace(tmp, cache)
    return answers


def _ground_truth(t: dict, limits: Limits) -> list:
    not_none = _dataset(t["task_id"]) == "mbpp" and t["entry_point"] in tasks.OUTPUT_NOT_NONE
    calls = call_function(t["prompt"] + t["canonical_solution"], t["entry_point"], t["inputs"], limits,
                          post="is_not_none" if not_none else "")
    where = f"task {t['task_id']}: the canonical solution"
    if calls.load_error:
        raise ValueError(f"{where} does not load ({calls.load_error}); fix the problem file")
    if calls.errors or not calls.verdict.passed:
        i = min(calls.errors, default=calls.answered)
        why = calls.errors.get(i) or f"{calls.verdict.status}: {calls.verdict.detail}"
        raise ValueError(f"{where} failed on {_label(i, t['n_base'], len(t['inputs']))} ({why}); expected "
                         "outputs cannot be computed (raise --timeout if it timed out)")
    return [encode(out) for out in calls.outputs]


def _label(i: int, n_base: int, n: int) -> str:
    return f"base input {i + 1}/{n_base}" if i < n_base else f"plus input {i - n_base + 1}/{n - n_base}"


def grade(problem: Problem, program: str, limits: Limits) -> Verdict:
    """Run `program`'s entry point on every input of the chosen set; compare as evalplus does."""
    spec = problem.spec
    n, n_base, dataset = len(spec["inputs"]), spec["n_base"], spec["dataset"]
    not_none = dataset == "mbpp" and problem.entry_point in tasks.OUTPUT_NOT_NONE
    calls = call_function(program, problem.entry_point, spec["inputs"], limits,
                          post="bool_or_not_none" if not_none else "")
    verdict = calls.verdict
    if calls.load_error:
        return Verdict(status="runtime_error", detail=calls.load_error, time_s=verdict.time_s,
                       protections=verdict.protections)
    for i in range(calls.answered):
        where = _label(i, n_base, n)
        if i in calls.errors:
            return _verdict(verdict, "failed", f"{where}: {calls.errors[i]}")
        inp, exp = decode(spec["inputs"][i]), decode(spec["expected"][i])
        if not check_output(inp, calls.outputs[i], exp, spec["atol"], dataset, problem.entry_point):
            return _verdict(verdict, "failed", f"{where}: expected {short(exp)}, got {short(calls.outputs[i])}")
    if calls.answered < n or not verdict.passed:
        return _verdict(verdict, verdict.status if not verdict.passed else "runtime_error",
                        f"{_label(calls.answered, n_base, n) if calls.answered < n else 'after the inputs'}: "
                        f"{verdict.detail}")
    n_plus = n - n_base
    sets = f"{n_base} base + {n_plus} plus" if problem.test_set == "base+plus" else f"{n_base} base"
    return _verdict(verdict, "passed", f"{sets} inputs match (evalplus rules, compared outside the sandbox)")


def _verdict(run: Verdict, status: str, detail: str) -> Verdict:
    return Verdict(status=status, detail=detail[:500], time_s=run.time_s, protections=run.protections)




def is_floats(x: object) -> bool:
    """evalplus's test for "a float answer": a float, or a non-empty list/tuple of floats."""
    if isinstance(x, float):
        return True
    return isinstance(x, (list, tuple)) and bool(x) and all(isinstance(i, float) for i in x)


def check_output(inp: list, out: object, exp: object, atol: float, dataset: str, entry_point: str) -> bool:
    """evalplus's verdict for one answer: `==`, its per-task oracles, then floats within atol
    (1e-6 when the file says 0) by numpy's allclose (rtol 1e-7). Values are plain data, so `==`
    runs no code of the candidate's."""
    try:
        return _check(inp, out, exp, atol, dataset, entry_point)
    except Exception:  # evalplus counts any exception while checking as a failure
        return False


def _check(inp: list, out: object, exp: object, atol: float, dataset: str, entry_point: str) -> bool:
    exact = out == exp
    if dataset == "mbpp":
        if entry_point == "are_equivalent":  # Mbpp/164: any answer
            exact = True
        elif entry_point == "sum_div":  # Mbpp/295
            exact = exact or out == 0
        elif entry_point == "surface_Area":  # Mbpp/581
            exact = exact or abs(out - tasks.surface_area(*inp)) <= atol
        elif entry_point == "digit_distance_nums":  # Mbpp/558
            exact = exact or out == tasks.digit_distance(*inp)
        elif entry_point in tasks.OUTPUT_SET_EQ:
            exact = set(out) == set(exp)
        elif entry_point in tasks.OUTPUT_NOT_NONE:  # the sandbox already reduced `out` to a bool
            exact = out == exp
    elif entry_point == "find_zero":  # HumanEval/32: any root will do
        return abs(tasks.poly(*inp, out)) <= atol
    if atol == 0 and is_floats(exp):
        atol = 1e-6
    if exact or atol == 0:
        return bool(exact)
    if type(out) is not type(exp) or (isinstance(exp, (list, tuple)) and len(out) != len(exp)):
        return False
    import numpy as np  # only for float answers that are not exactly equal

    return bool(np.allclose(out, exp, rtol=1e-07, atol=atol))
