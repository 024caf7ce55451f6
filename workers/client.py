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
from pathlib import Path

ROUTES = {"proof": "proofs", "grading": "gradings", "math": "math/checks"}


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

    def submit_grading(self, samples: list[dict], problems: str = "humaneval", limits: dict | None = None) -> dict:
        """Submit {task_id, completion} samples; returns the queued job."""
        body = {"problems": problems, "samples": samples, "limits": limits or {}}
        return self._request("POST", "/v1/gradings", json=body).json()

    def submit_proofs(self, theorems: list[dict], search: dict | None = None, generation: dict | None = None) -> dict:
        """Submit {name, statement, header} theorems; returns the queued job."""
        body = {"theorems": theorems, "search": search or {}, "generation": generation or {}}
        return self._request("POST", "/v1/proofs", json=body).json()

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
             progress: bool = True) -> dict:
        """Poll until the job leaves queued/running; a tqdm bar on stderr follows `done`/`total`."""
        from tqdm import tqdm

        deadline = None if timeout is None else time.monotonic() + timeout
        job = self.job(kind, job_id)
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
                job = self.job(kind, job_id)


def run_remote(args) -> int:
    """`proofcode grade|prove --server URL`: run the job on a service, write what the local command writes."""
    token = getattr(args, "token", None) or os.environ.get("PROOFCODE_TOKEN")
    client = ServiceClient(args.server, token=token)
    try:
        if args.command == "grade":
            return _remote_grade(client, args)
        if args.command == "prove":
            return _remote_prove(client, args)
        raise ServiceError(f"`proofcode {args.command}` cannot run on a server; drop --server")
    finally:
        client.close()


def _read_jsonl(path: str | Path, what: str) -> list[dict]:
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{what} file {p} not found")
    rows = []
    for n, line in enumerate(p.read_text().splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ValueError(f"{p}:{n}: not valid JSON ({exc})") from None
    return rows


def _remote_grade(client: ServiceClient, args) -> int:
    samples_path = Path(args.samples)
    rows = _read_jsonl(samples_path, "samples")
    for n, r in enumerate(rows, 1):
        if "task_id" not in r or "completion" not in r:
            raise ValueError(f"{samples_path}:{n}: a sample needs task_id and completion")
    limits = {}
    if getattr(args, "timeout", None):
        limits["timeout_s"] = args.timeout
    problems = str(getattr(args, "problems", None) or "humaneval")
    job = client.submit_grading([{"task_id": r["task_id"], "completion": r["completion"]} for r in rows],
                                problems=problems, limits=limits)
    print(f"submitted grading job {job['id']} ({job['total']} samples) to {client.url}", file=sys.stderr)
    job = client.wait("grading", job["id"])
    results = client.results("grading", job["id"])
    out = Path(getattr(args, "output", None) or getattr(args, "out", None)
               or samples_path.with_name(samples_path.name + "_results.jsonl"))
    with open(out, "w") as f:
        for src, res in zip(rows, results):
            f.write(json.dumps({**src, "result": res.get("status"), "passed": bool(res.get("passed")),
                                "detail": res.get("detail")}) + "\n")
    _print_grade_summary(results, out, job)
    return 0 if job["status"] == "completed" else 1


def _print_grade_summary(results: list[dict], out: Path, job: dict) -> None:
    from collections import Counter, defaultdict

    by_task: dict[str, list[bool]] = defaultdict(list)
    for r in results:
        by_task[r["task_id"]].append(bool(r.get("passed")))
    n_min = min((len(v) for v in by_task.values()), default=0)
    line = [f"{len(results)} samples, {len(by_task)} tasks"]
    try:
        from coder import pass_at_k

        for k in (1, 10, 100):
            if n_min >= k:
                vals = [pass_at_k(len(v), sum(v), k) for v in by_task.values()]
                line.append(f"pass@{k}={sum(vals) / len(vals):.4f}")
    except ImportError:
        pass
    statuses = Counter(r.get("status") for r in results)
    print(", ".join(line))
    print("statuses: " + ", ".join(f"{k}={v}" for k, v in sorted(statuses.items())))
    print(f"job {job['id']} {job['status']}; results written to {out}")


def _remote_prove(client: ServiceClient, args) -> int:
    import dataclasses

    from prover import load_theorems

    theorems = load_theorems(args.theorems) if hasattr(args, "theorems") else load_theorems(args.input)
    items = [dataclasses.asdict(t) for t in theorems]
    limit = getattr(args, "limit", None)
    if limit:
        items = items[:limit]
    job = client.submit_proofs(items)
    print(f"submitted proof job {job['id']} ({job['total']} theorems) to {client.url}", file=sys.stderr)
    job = client.wait("proof", job["id"])
    results = client.results("proof", job["id"])
    out = Path(getattr(args, "output", None) or getattr(args, "out", None) or "proofs_results.jsonl")
    with open(out, "w") as f:
        for r in results:
            f.write(json.dumps(r) + "\n")
    from collections import Counter

    statuses = Counter(r.get("status") for r in results)
    print(f"{len(results)} theorems: " + ", ".join(f"{k}={v}" for k, v in sorted(statuses.items())))
    print(f"job {job['id']} {job['status']}; results written to {out}")
    return 0 if job["status"] == "completed" else 1
