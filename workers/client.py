"""A small Python client for the job service (`workers.executors` uses it behind `grade/prove --server URL`).

    client = ServiceClient("http://127.0.0.1:8000", token=None)
    job = client.submit_grading([{"task_id": "HumanEval/0", "completion": "..."}])
    job = client.wait("grading", job["id"])          # progress bar on stderr
    rows = client.results("grading", job["id"])      # one dict per item, in order
"""
from __future__ import annotations

import json
import sys
import time

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
