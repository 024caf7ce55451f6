"""A small Python client for the job service, and `run_remote(args)` behind `grade/prove --server URL`.

    client = ServiceClient("http://127.0.0.1:8000", token=None)
    job = client.submit_grading([{"task_id": "HumanEval/0", "completion": "..."}])
    job = client.wait("grading", job["id"])          # progress bar on stderr
    rows = client.results("grading", job["id"])      # one dict per item, in order
"""
from __future__ import annotations

import json
import os
import sys
import time

from proofcode_common import iter_jsonl

from .registry import ROUTES


class ServiceError(RuntimeError):
    """The service refused a request or could not be reached; the message says which and why."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class ServiceClient:
    """Thin httpx wrapper; every method raises ServiceError with the service's own `detail`."""

    def __init__(self, url: str, token: str | None = None, timeout: float = 120.0):
        import httpx

        self.url = url.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def _request(self, method: str, path: str, **kwargs):
        import httpx

        try:
            resp = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise ServiceError(f"cannot reach the proofcode service at {self.url} ({exc}); "
                               "is `proofcode serve` running there?") from None
        if resp.status_code >= 400:
            try:
                detail = resp.json().get("detail", resp.text)
            except ValueError:
                detail = resp.text
            raise ServiceError(f"{method} {path} -> {resp.status_code}: {detail}", resp.status_code)
        return resp

    def health(self) -> dict:
        return self._request("GET", "/healthz").json()

    def submit_grading(self, samples: list[dict], problems: str | list[dict] = "humaneval",
                       limits: dict | None = None, reattach: bool = False, **job) -> dict:
        """Submit {task_id, completion} samples (and coder.GradingJob fields); returns the queued job.

        With `reattach`, an earlier unfinished or completed job with the same input is returned
        instead (`"attached": true`): the Idempotency-Key is a hash of the body.
        """
        body = {"problems": problems, "samples": samples, "limits": limits or {}, **job}
        return self._submit("/v1/gradings", body, reattach)

    def submit_proofs(self, theorems: list[dict], search: dict | None = None, generation: dict | None = None,
                      generator: str = "model", project: str | None = None, reattach: bool = False) -> dict:
        """Submit {name, statement, header} theorems; returns the queued job (see submit_grading's `reattach`)."""
        body = {"theorems": theorems, "search": search or {}, "generation": generation or {},
                "generator": generator, "project": project}
        return self._submit("/v1/proofs", body, reattach)

    def _submit(self, path: str, body: dict, reattach: bool) -> dict:
        import hashlib

        headers = {}
        if reattach:
            digest = hashlib.sha256(json.dumps([path, body], sort_keys=True).encode()).hexdigest()
            headers["Idempotency-Key"] = digest
        return self._request("POST", path, json=body, headers=headers).json()

    def check_math(self, items: list[dict], wait_s: float = 30.0) -> dict:
        """Check {pred, ref} pairs; the job comes back with `results` if done within wait_s."""
        return self._request("POST", "/v1/math/check", json={"items": items, "wait_s": wait_s}).json()

    def complete(self, prompt: str | list[str], **params) -> dict:
        """OpenAI-style text completion from the service's model."""
        return self._request("POST", "/v1/completions", json={"prompt": prompt, **params}).json()

    def job(self, kind: str, job_id: str) -> dict:
        return self._request("GET", f"/v1/{ROUTES[kind]}/{job_id}").json()

    def cancel(self, kind: str, job_id: str) -> dict:
        return self._request("POST", f"/v1/{ROUTES[kind]}/{job_id}/cancel").json()

    def results(self, kind: str, job_id: str) -> list[dict]:
        text = self._request("GET", f"/v1/{ROUTES[kind]}/{job_id}/results").text
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def wait(self, kind: str, job_id: str, poll_s: float = 0.5, timeout: float | None = None,
             progress: bool = True, reconnect_s: float = 300.0) -> dict:
        """Poll until the job leaves queued/running; a tqdm bar on stderr follows `done`/`total`.

        A service that stops answering (restarting) is polled again for up to `reconnect_s`, with a message.
        """
        from tqdm import tqdm

        deadline = None if timeout is None else time.monotonic() + timeout
        job = self._poll(kind, job_id, poll_s, reconnect_s)
        with tqdm(total=job["total"], desc=f"{kind} {job_id[:8]}", unit="item", file=sys.stderr,
                  disable=not progress) as bar:
            while True:
                bar.update(job["done"] - bar.n)
                if job["status"] not in ("queued", "running"):
                    return job
                if deadline is not None and time.monotonic() > deadline:
                    raise ServiceError(f"{kind} job {job_id} still {job['status']} after {timeout} s "
                                       f"({job['done']}/{job['total']} done); it keeps running on the server")
                time.sleep(poll_s)
                job = self._poll(kind, job_id, poll_s, reconnect_s)

    def _poll(self, kind: str, job_id: str, poll_s: float, reconnect_s: float) -> dict:
        """The job's status; while the service is unreachable or unavailable, ask again for up to `reconnect_s`."""
        lost = None
        while True:
            try:
                job = self.job(kind, job_id)
            except ServiceError as exc:
                if exc.status not in (None, 502, 503, 504):
                    raise
                now = time.monotonic()
                if lost is None:
                    lost = now
                    print(f"\nlost the proofcode service at {self.url} ({exc}); polling again for up to "
                          f"{reconnect_s:g} s (a restarted service resumes the job)", file=sys.stderr)
                elif now - lost > reconnect_s:
                    raise ServiceError(f"the service at {self.url} did not answer for {reconnect_s:g} s; {kind} job "
                                       f"{job_id} resumes when it restarts: rerun the same command to re-attach") from None
                time.sleep(max(poll_s, 1.0))
                continue
            if lost is not None:
                print(f"the service is back after {time.monotonic() - lost:.0f} s; following {kind} job {job_id}",
                      file=sys.stderr)
            return job


# `--server` cannot honour these: the service runs its own Lean (REPL backend) and its own model worker.
# Every other option of `grade` and `prove` reaches the job (tests/workers/test_server_options.py walks them all).
REFUSED = {
    "prove": {
        "backend": ("repl", "LeanDojo (--backend dojo) runs locally only; the service runs the REPL backend"),
        "repo": (None, "dojo options run locally only"),
        "commit": (None, "dojo options run locally only"),
        "file": (None, "dojo options run locally only"),
        "repl_command": (None, "the service starts its own REPL (its pool.repl_command)"),
        "model": (None, "the service's model worker generates (--generator model); drop --model"),
        "generator": ("openai", "--generator openai runs locally only; on a server use model (the service's "
                                "model worker) or builtin"),
    },
}


def refuse_unsupported(args) -> None:
    """ValueError naming the first option that --server cannot honour."""
    for dest, (allowed, why) in REFUSED.get(args.command, {}).items():
        value = getattr(args, dest, None)
        bad = value == allowed if dest == "generator" else value is not None and value != allowed
        if bad:
            flag = "--" + dest.replace("_", "-")
            raise ValueError(f"{flag} {value} cannot be used with --server: {why}")


def run_remote(args) -> int:
    """`proofcode grade|prove --server URL`: the local command, with the service as its executor."""
    if args.command not in ("grade", "prove"):
        raise ServiceError(f"`proofcode {args.command}` cannot run on a server; drop --server")
    refuse_unsupported(args)
    token = getattr(args, "token", None) or os.environ.get("PROOFCODE_TOKEN")
    executor = ServerExecutor(ServiceClient(args.server, token=token), progress=not getattr(args, "no_progress", False))
    try:
        return args.func(args, executor=executor)
    finally:
        executor.close()


class ServerExecutor:
    """Runs the items of a `grade` or `prove` command as one job on a service, re-attaching to an earlier one."""

    def __init__(self, client: ServiceClient, progress: bool = True):
        self.client, self.progress = client, progress

    def close(self) -> None:
        self.client.close()

    def grader(self, job, problems: dict):
        """coder's Grader: (line, sample) pairs -> (line, Verdict, extra row fields) from the service."""
        from coder import Verdict

        body = job.model_dump(mode="json")
        if job.problems.lower() not in ("humaneval",):  # a local file travels inline: the server may not see it
            body["problems"] = [row for _, row in iter_jsonl(job.problems)]

        def grade(todo: list[tuple[int, dict]]):
            samples = [{"task_id": s["task_id"], **({"completion": s["completion"]} if "completion" in s
                                                    else {"solution": s["solution"]})} for _, s in todo]
            for r in self._run("grading", {**body, "samples": samples}, "samples"):
                extra = {"ungraded": True} if r.get("ungraded") else {}
                # as sent: the service's own statuses ("error" for an item it could not grade) stay
                verdict = Verdict.model_construct(**{k: r[k] for k in Verdict.model_fields if k in r})
                yield todo[r["index"]][0], verdict, extra

        return grade

    def prover(self, config):
        """prover's Prover: (name, theorem) pairs -> the records `proofcode prove` writes, from the service."""
        body = {"search": config.search.model_dump(mode="json"), "generation": config.sampling.model_dump(mode="json"),
                "generator": config.generator, "project": config.project}

        def prove(jobs: list):
            theorems = [{"name": name, "header": t.header, "statement": t.statement,
                         "informal_prefix": t.informal_prefix} for name, t in jobs]
            for r in self._run("proof", {**body, "theorems": theorems}, "theorems"):
                yield {k: v for k, v in r.items() if k not in ("index", "header", "statement", "informal_prefix",
                                                               "passed")}

        return prove

    def _run(self, kind: str, body: dict, what: str) -> list[dict]:
        """Submit (or re-attach), follow with a progress bar, and return the results in order."""
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
