"""Where `proofcode grade` and `prove` run their items: a service (`--server URL`) or a Ray pool (`--ray [ADDRESS]`).

The commands build their job once (coder.GradingJob, prover.ProveConfig) and write results, resume and
summarise in one place (coder.grading, prover.run); an executor only turns items into verdicts. In-process
is their default; these two post the same request body (the registry's models) to a service, or run it
through `WorkerPool.run` as the service would.
"""
from __future__ import annotations

import os
import shlex
import sys
from typing import Callable

from proofcode_common import iter_jsonl

from .registry import KINDS, ROUTES

# What each executor cannot honour: option dest -> (the refused value, or None for any value given; why).
# Every other option of `grade` and `prove` reaches the job (tests/workers/test_server_options.py walks them).
_DOJO = "LeanDojo (--backend dojo) runs locally only; workers run the REPL backend"
REFUSED = {
    "server": {"prove": {
        "backend": ("dojo", _DOJO), "repo": (None, _DOJO), "commit": (None, _DOJO), "file": (None, _DOJO),
        "repl_command": (None, "the service starts its own REPL (its pool.repl_command)"),
        "model": (None, "the service's model worker generates (--generator model); drop --model"),
        "generator": ("openai", "--generator openai runs locally only; use model (the service's model worker) "
                                "or builtin"),
        "ray": (None, "the service runs its own pool"),
    }, "grade": {"ray": (None, "the service runs its own pool")}},
    "ray": {"prove": {
        "backend": ("dojo", _DOJO), "repo": (None, _DOJO), "commit": (None, _DOJO), "file": (None, _DOJO),
        "generator": ("openai", "--generator openai runs locally only; use model (a model worker) or builtin"),
    }},
}


def refuse_unsupported(args, where: str) -> None:
    """ValueError naming the first option that the `where` executor ("server" or "ray") cannot honour."""
    for dest, (refused, why) in REFUSED[where].get(args.command, {}).items():
        value = getattr(args, dest, None)
        if value is not None and (refused is None or value == refused):
            raise ValueError(f"--{dest.replace('_', '-')} {value} cannot be used with --{where}: {why}")


def run_elsewhere(args) -> int:
    """`proofcode grade|prove --server URL | --ray [ADDRESS]`: the local command with that executor."""
    where = "server" if getattr(args, "server", None) else "ray"
    if args.command not in ("grade", "prove"):
        raise ValueError(f"`proofcode {args.command}` cannot run with --{where}; drop it")
    refuse_unsupported(args, where)
    progress = not getattr(args, "no_progress", False)
    if where == "server":
        from .client import ServiceClient

        token = getattr(args, "token", None) or os.environ.get("PROOFCODE_TOKEN")
        executor: JobExecutor = ServerExecutor(ServiceClient(args.server, token=token), progress)
    else:
        executor = PoolExecutor.start(args)
    try:
        return args.func(args, executor=executor)
    finally:
        executor.close()


class JobExecutor:
    """Builds the registry's request for a command's items; `_run` runs it and returns results in order."""

    def close(self) -> None:
        pass

    def _run(self, kind: str, body: dict, what: str) -> list[dict]:
        raise NotImplementedError

    def grader(self, job, problems: dict):
        """coder's Grader: (line, sample) pairs -> (line, Verdict, extra row fields)."""
        from coder import Verdict

        body = job.model_dump(mode="json")
        if job.problems.lower() != "humaneval":  # a local file travels inline: the workers may not see it
            body["problems"] = [row for _, row in iter_jsonl(job.problems)]

        def grade(todo: list[tuple[int, dict]]):
            samples = [{"task_id": s["task_id"], **({"completion": s["completion"]} if "completion" in s
                                                    else {"solution": s["solution"]})} for _, s in todo]
            for r in self._run("grading", {**body, "samples": samples}, "samples"):
                extra = {"ungraded": True} if r.get("ungraded") else {}
                # as sent: a worker's own statuses ("error" for an item it could not grade) stay
                verdict = Verdict.model_construct(**{k: r[k] for k in Verdict.model_fields if k in r})
                yield todo[r["index"]][0], verdict, extra

        return grade

    def prover(self, config):
        """prover's Prover: (name, theorem) pairs -> the records `proofcode prove` writes."""
        body = {"search": config.search.model_dump(mode="json"), "generation": config.sampling.model_dump(mode="json"),
                "generator": config.generator, "project": config.project}

        def prove(jobs: list):
            theorems = [{"name": name, "header": t.header, "statement": t.statement,
                         "informal_prefix": t.informal_prefix} for name, t in jobs]
            for r in self._run("proof", {**body, "theorems": theorems}, "theorems"):
                yield {k: v for k, v in r.items() if k not in ("index", "header", "statement", "informal_prefix",
                                                               "passed")}

        return prove


class ServerExecutor(JobExecutor):
    """Runs the items as one job on a service, re-attaching to an earlier job with the same input."""

    def __init__(self, client, progress: bool = True):
        self.client, self.progress = client, progress

    def close(self) -> None:
        self.client.close()

    def _run(self, kind: str, body: dict, what: str) -> list[dict]:
        """Submit (or re-attach), follow with a progress bar, and return the results in order."""
        from .client import ServiceError

        client = self.client
        job = client._submit(f"/v1/{ROUTES[kind]}", body, reattach=True)
        if job.get("attached"):
            print(f"re-attached to {kind} job {job['id']} ({job['total']} {what}, {job['done']} done, "
                  f"{job['status']}) on {client.url}: the same input was submitted before", file=sys.stderr)
        else:
            print(f"submitted {kind} job {job['id']} ({job['total']} {what}) to {client.url}", file=sys.stderr)
        job = client.wait(kind, job["id"], progress=self.progress)
        if job["status"] != "completed":
            raise ServiceError(f"{kind} job {job['id']} ended {job['status']}"
                               + (f": {job['error']}" if job.get("error") else ""))
        return client.results(kind, job["id"])


class PoolExecutor(JobExecutor):
    """Runs the items through a worker pool (`WorkerPool` on Ray, or `LocalPool`), as the service's runner does."""

    def __init__(self, pool, on_close: Callable[[], None] | None = None):
        self.pool, self._on_close = pool, on_close

    @classmethod
    def start(cls, args) -> "PoolExecutor":
        """A Ray pool sized for the command: joins the cluster at --ray ADDRESS, or starts a local Ray."""
        from .pool import WorkerPool, init_ray

        config = pool_config(args)
        init_ray(None if args.ray == "local" else args.ray, config)
        pool = WorkerPool(config)
        return cls(pool, pool.shutdown)

    def close(self) -> None:
        if self._on_close is not None:
            self._on_close()

    def _run(self, kind: str, body: dict, what: str) -> list[dict]:
        job = KINDS[kind]
        request = job.request.model_validate(body)
        items = [item.model_dump(exclude_none=True) for item in getattr(request, job.items)]
        results: dict[int, dict] = {}
        self.pool.run(kind, enumerate(items), job.params(request),
                      on_result=lambda i, r: results.__setitem__(i, {"index": i, **items[i], **r}))
        return [results[i] for i in sorted(results)]


def pool_config(args):
    """The PoolConfig a `grade` or `prove` command needs: its --workers, and for prove its REPL, project and model."""
    from .config import PoolConfig

    if args.command == "grade":
        return PoolConfig(coder_workers=args.workers or os.cpu_count() or 1, prover_workers=0,
                          model={"enabled": False})
    model = {"enabled": args.generator == "model", "backend": {"checkpoint": args.model}}
    return PoolConfig(coder_workers=0, prover_workers=1, repl_pool_size=args.workers, in_flight_per_worker=args.workers,
                      lean_project=args.project, model=model,
                      repl_command=shlex.split(args.repl_command) if args.repl_command else None)

