"""The service on a multi-node Ray cluster on 127.0.0.1: a node's raylet killed mid-job changes no verdict.

Head (the driver and the service, no CPUs) + three 1-CPU worker nodes, one coder worker each. A lost
node's items are re-run on live workers without using an attempt; with no capacity left the job
waits, says why (job status and /healthz), and completes when a node joins.
"""
import json
import sys
import logging
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from svc_helpers import LoopbackCluster, ServerThread, canonical_samples, client, wait_for  # noqa: E402

from workers.config import PoolConfig, ServiceConfig  # noqa: E402
from workers.service import create_app  # noqa: E402

pytestmark = pytest.mark.ray
N_OK, N_BAD = 14, 6


def samples() -> list[dict]:
    good = canonical_samples(N_OK + N_BAD)
    bad = [{"task_id": s["task_id"], "completion": "    return None\n"} for s in good[N_OK:]]
    # The last twelve programs sleep 0.5 s once loaded (verdicts unchanged): however fast grading gets, a
    # job is still running ~2 s after its first items are done, when the tests kill nodes or restart.
    return [dict(s, completion=s["completion"] + "\n__import__('time').sleep(0.5)\n") if i >= 8 else s
            for i, s in enumerate(good[:N_OK] + bad)]


@pytest.fixture(scope="module")
def cluster():
    with LoopbackCluster(nodes=3, cpus=1) as c:
        yield c


@pytest.fixture(scope="module")
def service(cluster, tmp_path_factory):
    cfg = ServiceConfig(db=str(tmp_path_factory.mktemp("mn") / "jobs.sqlite"),
                        pool=PoolConfig(coder_workers=3, prover_workers=0, model={"enabled": False}))
    with ServerThread(create_app(cfg)) as srv:
        srv.config = cfg
        yield srv


@pytest.fixture(scope="module")
def baseline(service):
    return grade(service)[0]


def coders(service):
    return service.app.state.proofcode["pool"].group("grading")


def restore(cluster, service, nodes: int = 3) -> None:
    """Back to three live worker nodes with a ready worker on each."""
    cluster.remove_dead()
    for _ in range(nodes - len(cluster.cluster.worker_nodes)):
        cluster.add_node()
    live = lambda: {n.node_id for n in cluster.cluster.worker_nodes}  # noqa: E731
    wait_for(lambda: coders(service).ready_count() == 3 and set(coders(service).node) <= live(), timeout=90, poll=0.3)


def grade(service, during=None) -> tuple[list[tuple], dict]:
    """Submit the samples; run `during(job_id)` once a few are done; return (verdicts, final job)."""
    http = client(service.url)
    job = http.post("/v1/gradings", json={"samples": samples()}).json()
    if during:
        wait_for(lambda: http.get(f"/v1/gradings/{job['id']}").json()["done"] >= 3, timeout=120)
        service = during(job["id"]) or service  # a restarted service answers from now on
        http = client(service.url)
    final = wait_for(lambda: (j := http.get(f"/v1/gradings/{job['id']}").json())["status"] != "running" and j,
                     timeout=240, poll=0.3)
    rows = [json.loads(line) for line in http.get(f"/v1/gradings/{job['id']}/results").text.splitlines()]
    assert sorted(r["index"] for r in rows) == list(range(N_OK + N_BAD))  # every item exactly once
    return [(r["index"], r["status"], r["passed"]) for r in rows], final


def test_workers_spread_across_nodes_and_the_fault_free_run(service, baseline):
    assert len(set(coders(service).node)) == 3  # one worker per node: 1 CPU each
    assert [s for _, s, _ in baseline] == ["passed"] * N_OK + ["failed"] * N_BAD


@pytest.mark.parametrize("killed", [1, 2])
def test_killing_nodes_mid_job_changes_no_verdict(cluster, service, baseline, killed):
    restore(cluster, service)
    group = coders(service)

    def kill(_job_id):
        for node in group.node[:killed]:
            cluster.kill_raylet(node)

    verdicts, job = grade(service, during=kill)
    assert job["status"] == "completed" and "error" not in job["counts"], job
    assert verdicts == baseline


def test_with_no_capacity_left_the_job_waits_says_why_and_completes_when_a_node_joins(cluster, service, baseline):
    restore(cluster, service)
    group, http = coders(service), client(service.url)
    seen = {}

    def kill_all(job_id):
        for node in list(group.node):
            cluster.kill_raylet(node)
        # The health thread notices the workers one by one: wait until it reports all three gone.
        seen["job"] = wait_for(lambda: "3 of 3" in ((j := http.get(f"/v1/gradings/{job_id}").json()).get("waiting")
                                                    or "") and j, timeout=60)
        seen["health"] = http.get("/healthz").json()
        seen["done"] = http.get(f"/v1/gradings/{job_id}").json()["done"]
        cluster.add_node(cpus=3)  # capacity returns

    verdicts, job = grade(service, during=kill_all)
    assert job["status"] == "completed" and verdicts == baseline
    waiting = seen["job"]["waiting"]
    assert "3 of 3 coder worker(s) not running" in waiting and "pending placement" in waiting, waiting
    assert "{'CPU': 1.0}" in waiting and "CPU 0 free of 0" in waiting, waiting
    assert seen["job"]["status"] == "running" and seen["job"]["done"] == seen["done"] < N_OK + N_BAD
    assert seen["health"]["status"] == "degraded" and seen["health"]["waiting"][0].startswith("coder: 3 of 3")


def test_a_restarted_service_resumes_its_job_on_a_smaller_cluster(cluster, service, baseline):
    """Last in this module: the service is stopped mid-job, a node dies, a new service on 2 of 3 CPUs finishes it."""
    restore(cluster, service)
    nodes = list(coders(service).node)
    started = []

    def restart_smaller(_job_id):
        service.app.state.proofcode["runner"].shutdown(wait=True)  # what a graceful stop does first, now
        assert service.app.state.proofcode["store"].unfinished() == [_job_id]
        service.stop()  # the job stays `running` in SQLite, the pool's actors go
        cluster.kill_raylet(nodes[0])
        started.append(ServerThread(create_app(service.config)).__enter__())
        return started[0]

    try:
        verdicts, job = grade(service, during=restart_smaller)
        assert job["status"] == "completed" and verdicts == baseline
        pool = started[0].app.state.proofcode["pool"]
        assert pool.status()["coder"]["ready"] == 2  # 3 asked for, 2 CPUs left: slower, not never
        assert "1 of 3 coder worker(s) not running" in wait_for(lambda: pool.waiting("grading"), timeout=30)
    finally:
        for srv in started:
            srv.stop()


def test_init_ray_with_an_address_keeps_the_clusters_settings(cluster):
    """The local-Ray defaults (no usage stats, 127.0.0.1 only) are for a Ray proofcode starts, not one it joins.

    (This loopback cluster itself was started with RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0, so its drivers
    need that too: it is the cluster's setting, passed on from the test environment.)
    """
    import os
    import subprocess

    env = {k: v for k, v in os.environ.items() if k != "RAY_USAGE_STATS_ENABLED"}
    code = ("import os, ray; from workers.pool import init_ray; init_ray(); "
            "print(os.environ.get('RAY_USAGE_STATS_ENABLED'), len([n for n in ray.nodes() if n['Alive']]))")
    out = subprocess.run([sys.executable, "-c", code], env={**env, "RAY_ADDRESS": cluster.cluster.address},
                         capture_output=True, text=True, timeout=120)
    alive = 1 + len(cluster.cluster.worker_nodes) - len(cluster.killed)
    assert out.stdout.split() == ["None", str(alive)], out.stderr[-2000:]


def test_init_ray_without_an_address_starts_its_own_beside_a_running_cluster(cluster):
    """`proofcode demo` on a machine where a Ray cluster already runs: a bare ray.init() would join that
    cluster and refuse the local num_cpus; proofcode starts a Ray of its own instead."""
    import os
    import subprocess

    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    code = ("import ray; from workers.pool import init_ray; init_ray(num_cpus=1); "
            "print(ray.get_runtime_context().gcs_address)")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[-1] != cluster.cluster.address, out.stdout
