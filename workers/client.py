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

    def submit_grading(self, samples: list[dict], problems: str | list[dict] = "humaneval",
                       limits: dict | None = None, reattach: bool = False) -> dict:
        """Submit {task_id, completion} samples; returns the queued job.

        With `reattach`, an earlier unfinished or completed job with the same input is returned
        instead (`"attached": true`): the Idempotency-Key is a hash of the body.
        """
        body = {"problems": problems, "samples": samples, "limits": limits or {}}
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


def _read_jsonl(path: str | Path, what: str) -> list[tuple[int, dict]]:
    """(line number, row) for each non-empty line; errors name the file and line."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{what} file {p} not found")
    rows = []
    for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                rows.append((n, json.loads(line)))
            except json.JSONDecodeError as exc:
                raise ValueError(f"{p}:{n}: not valid JSON ({exc})") from None
    return rows


def _remote_grade(client: ServiceClient, args) -> int:
    """Mirror of `coder.cli.cmd_grade`: same results file (SAMPLES.jsonl_results.jsonl), rows, resume and summary."""
    from coder import format_summary, load_graded, parse_ks, results_path_for, summarize

    if getattr(args, "base_only", False) or getattr(args, "format", "auto") != "auto":
        raise ValueError("--base-only and --format are not passed to a service yet: grade locally (without --server)")
    samples_path = Path(args.samples)
    rows = _read_jsonl(samples_path, "samples")
    if not rows:
        raise ValueError(f"{samples_path} contains no samples")
    for n, r in rows:
        if "task_id" not in r or not isinstance(r.get("completion", r.get("solution")), str):
            raise ValueError(f"{samples_path}:{n}: a sample needs 'task_id' and a string 'completion' or 'solution'")
    out = results_path_for(samples_path)
    done = load_graded(out)  # resumes as the local command does
    todo = [(n, r) for n, r in rows if n not in done]
    if todo:
        for n, row in zip([n for n, _ in todo], _grade_on_server(client, args, [r for _, r in todo])):
            done[n] = {**row, "line": n}
    out_rows = [done[n] for n, _ in rows]
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text("".join(json.dumps(row) + "\n" for row in out_rows), encoding="utf-8")
    os.replace(tmp, out)
    summary = summarize(out_rows, parse_ks(getattr(args, "k", "1,10,100")), out)
    ungraded = sum(1 for r in out_rows if r.get("ungraded"))
    if getattr(args, "json", False):
        print(json.dumps({**summary, "ungraded": ungraded}))
    else:
        print(format_summary(summary))
    return _report_ungraded(ungraded, len(out_rows), "sample")


UNGRADED_EXIT = 3  # the job finished, but some items have no verdict: their worker died on every attempt


def _report_ungraded(ungraded: int, total: int, what: str) -> int:
    """0, or UNGRADED_EXIT with one line saying how many items got no verdict and why."""
    if not ungraded:
        return 0
    print(f"warning: {ungraded} of {total} {what}(s) were NOT graded: their worker died every time it ran them "
          "(rows with \"ungraded\": true; see their detail); the scores above count them as failures",
          file=sys.stderr)
    return UNGRADED_EXIT


def _grade_on_server(client: ServiceClient, args, samples: list[dict]) -> list[dict]:
    """Submit, follow with a progress bar, and return one local-format result row per sample, in order."""
    items = [{"task_id": str(r["task_id"]), **({"completion": r["completion"]} if "completion" in r
                                               else {"solution": r["solution"]})} for r in samples]
    problems = getattr(args, "problems", None)
    # A local problems file travels inline: the server may not see this machine's files.
    source = [r for _, r in _read_jsonl(problems, "problems")] if problems else (getattr(args, "benchmark", None) or "humaneval")
    limits = {"timeout_s": args.timeout} if getattr(args, "timeout", None) else {}
    if getattr(args, "allow_weaker_sandbox", False):
        limits["allow_weaker_sandbox"] = True
    job = client.submit_grading(items, problems=source, limits=limits, reattach=True)
    _say_submitted(client, job, "grading", "samples")
    job = client.wait("grading", job["id"], progress=not getattr(args, "no_progress", False))
    if job["status"] != "completed":
        raise ServiceError(f"grading job {job['id']} ended {job['status']}"
                           + (f": {job['error']}" if job.get("error") else ""))
    results = client.results("grading", job["id"])
    return [_result_row(samples[r["index"]], r) for r in results]


def _say_submitted(client: ServiceClient, job: dict, kind: str, what: str) -> None:
    if job.get("attached"):
        print(f"re-attached to {kind} job {job['id']} ({job['total']} {what}, {job['done']} done, {job['status']}) "
              f"on {client.url}: the same input was submitted before", file=sys.stderr)
    else:
        print(f"submitted {kind} job {job['id']} ({job['total']} {what}) to {client.url}", file=sys.stderr)


def _result_row(sample: dict, verdict: dict) -> dict:
    # The same row `proofcode grade` writes locally; the caller sets `line`.
    row = dict(sample)
    status, detail = verdict.get("status"), verdict.get("detail", "")
    row.update(result="passed" if verdict.get("passed") else f"{status}: {detail}",
               passed=bool(verdict.get("passed")), verdict=status, detail=detail,
               time_s=verdict.get("time_s"), protections=verdict.get("protections"))
    if verdict.get("ungraded"):
        row["ungraded"] = True
    return row




def _remote_prove(client: ServiceClient, args) -> int:
    """Mirror of `prover.cli.run_prove`: one JSON line per theorem to -o (appended) or stdout, summary on stderr."""
    from prover import load_theorems

    if getattr(args, "generator", "builtin") == "openai":
        raise ValueError("--generator openai runs locally only; on a server use --generator model "
                         "(the service's model worker) or builtin")
    if getattr(args, "backend", "repl") != "repl":
        raise ValueError("--server runs the REPL backend; LeanDojo (--backend dojo) runs locally only")
    from prover.run import done_names, job_names  # the local command's naming and resume rules

    theorems = load_theorems(args.input)[: getattr(args, "limit", None)]
    output = getattr(args, "output", None)
    skip = done_names(Path(output)) if output and not getattr(args, "no_resume", False) else set()
    items = [{"name": name, "header": t.header, "statement": t.statement, "informal_prefix": t.informal_prefix}
             for name, t in zip(job_names(theorems), theorems) if name not in skip]
    if not items:
        print(f"proved 0/0; {len(skip)} already done" + (f"; results in {output}" if output else ""), file=sys.stderr)
        return 0
    search = {"algorithm": args.search, "budget_seconds": args.budget_seconds, "max_expansions": args.max_expansions,
              "max_samples": args.max_samples, "num_candidates": args.num_candidates,
              "tactic_timeout": args.tactic_timeout}
    generation = {"temperature": args.temperature, "seed": args.seed}
    generator = "model" if args.generator == "model" else "builtin"
    if args.generator == "model" and getattr(args, "model", None):
        print("note: --model is ignored with --server; the service's model worker generates", file=sys.stderr)
    job = client.submit_proofs(items, search=search, generation=generation, generator=generator,
                               project=getattr(args, "project", None), reattach=True)
    _say_submitted(client, job, "proof", "theorems")
    job = client.wait("proof", job["id"])
    if job["status"] != "completed":
        raise ServiceError(f"proof job {job['id']} ended {job['status']}" + (f": {job['error']}" if job.get("error") else ""))
    records = [{k: v for k, v in r.items() if k not in ("index", "header", "statement", "informal_prefix", "passed")}
               for r in client.results("proof", job["id"])]
    stream = open(output, "a", encoding="utf-8") if output else sys.stdout
    try:
        for r in records:
            stream.write(json.dumps(r, ensure_ascii=False) + "\n")
    finally:
        if output:
            stream.close()
    counts: dict[str, int] = {}
    for r in records:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    rest = ", ".join(f"{s} {counts[s]}" for s in ("failed", "timeout", "error") if counts.get(s))
    text = f"proved {counts.get('proved', 0)}/{len(records)}" + (f" ({rest})" if rest else "")
    text += f"; {len(skip)} already done" if skip else ""
    print(text + (f"; results in {output}" if output else ""), file=sys.stderr)
    return _report_ungraded(sum(1 for r in records if r.get("ungraded")), len(records), "theorem")
