"""The pool without HTTP: bad programs are verdicts, dead or hung workers become item errors, never lost items."""
import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from svc_helpers import canonical_samples, wait_for  # noqa: E402

from workers.config import PoolConfig  # noqa: E402
from workers.pool import WorkerPool  # noqa: E402

pytestmark = pytest.mark.ray
SLEEPY = "    import time\n    time.sleep(30)\n"  # a HumanEval/0 body that outlives every limit below


def run(pool, samples, limits=None):
    results = {}
    pool.run("grading", enumerate(samples), {"problems": "humaneval", "limits": limits or {}},
             lambda i, r: results.setdefault(i, []).append(r))
    return results


def test_bad_programs_are_their_own_verdicts(ray_cluster):
    pool = WorkerPool(PoolConfig(coder_workers=2, model={"enabled": False}))
    try:
        good = canonical_samples(3)
        samples = good + [
            {"task_id": "HumanEval/0", "completion": "    return True\n"},                  # wrong answer
            {"task_id": "HumanEval/0", "completion": SLEEPY},                             # too slow
            {"task_id": "HumanEval/0", "completion": "    import os\n    os._exit(3)\n"},  # exits mid-test
            {"task_id": "HumanEval/0", "completion": "    x = 'a' * (1 << 34)\n"},         # memory bomb
            {"task_id": "HumanEval/999", "completion": "pass"},                           # unknown task
        ]
        results = run(pool, samples, {"timeout_s": 3})
    finally:
        pool.shutdown()
    assert sorted(results) == list(range(len(samples))) and all(len(v) == 1 for v in results.values())
    status = [results[i][0]["status"] for i in range(len(samples))]
    assert status[:3] == ["passed"] * 3
    assert status[3] == "failed" and status[4] == "timeout"
    assert status[5] in ("failed", "runtime_error") and status[6] in ("memory_exceeded", "runtime_error", "failed")
    assert status[7] == "error" and "HumanEval/999" in results[7][0]["detail"]
    assert [results[i][0]["passed"] for i in range(len(samples))] == [True] * 3 + [False] * 5


def test_an_item_whose_worker_keeps_dying_is_an_error_not_a_hang(ray_cluster):
    pool = WorkerPool(PoolConfig(coder_workers=1, max_item_attempts=1, in_flight_per_worker=1, model={"enabled": False}))
    try:
        pid = pool.worker_pids()[0]
        samples = [{"task_id": "HumanEval/0", "completion": SLEEPY}] + canonical_samples(2)
        out = {}
        t = threading.Thread(target=lambda: out.update(run(pool, samples, {"timeout_s": 60})))
        t.start()
        time.sleep(3)  # the worker is inside the sleepy sample
        os.kill(pid, signal.SIGKILL)
        t.join(timeout=120)
        assert not t.is_alive()
        assert wait_for(lambda: pool.worker_pids()[0] != pid)  # restarted
    finally:
        pool.shutdown()
    assert sorted(out) == [0, 1, 2]
    first = out[0][0]
    assert first["status"] == "error" and first["ungraded"] and "worker died 1 time(s)" in first["detail"]
    assert out[1][0]["passed"] and out[2][0]["passed"]  # queued behind it: retried free, graded


def test_a_hung_item_restarts_its_worker(ray_cluster):
    pool = WorkerPool(PoolConfig(coder_workers=1, max_item_attempts=2, in_flight_per_worker=1, item_timeout_s=4,
                                 model={"enabled": False}))
    try:
        results = run(pool, [{"task_id": "HumanEval/0", "completion": SLEEPY}] + canonical_samples(2), {"timeout_s": 60})
    finally:
        pool.shutdown()
    assert sorted(results) == [0, 1, 2]
    assert results[0][0]["status"] == "error" and "worker died 2 time(s)" in results[0][0]["detail"]
    assert results[1][0]["passed"] and results[2][0]["passed"]


def test_a_pool_bigger_than_the_cluster_runs_on_what_fits_and_says_what_waits(ray_cluster):
    # The session cluster has 8 CPUs: one 5-CPU coder fits, the second waits for placement.
    pool = WorkerPool(PoolConfig(coder_workers=2, coder_resources={"num_cpus": 5}, model={"enabled": False}))
    try:
        results = run(pool, canonical_samples(3))
        assert [results[i][0]["passed"] for i in range(3)] == [True] * 3
        assert pool.status()["coder"]["ready"] == 1
        reason = wait_for(lambda: pool.waiting("grading"), timeout=30)
        assert "1 of 2 coder worker(s) not running" in reason and "'CPU': 5.0" in reason and "CPU" in reason
    finally:
        pool.shutdown()


def test_a_job_that_cannot_be_placed_fails_loudly_after_stall_timeout(ray_cluster):
    from workers.pool import JobStalled

    pool = WorkerPool(PoolConfig(coder_workers=1, coder_resources={"num_cpus": 100}, stall_timeout_s=12,
                                 model={"enabled": False}))
    try:
        with pytest.raises(JobStalled, match=r"no item finished for 1\d s .*pending placement: each needs \{'CPU': 100.0\}"):
            run(pool, canonical_samples(1))
    finally:
        pool.shutdown()


FAKE_REPL = Path(__file__).resolve().parents[1] / "prover" / "fake_repl.py"  # prover's mini-Lean REPL double


@pytest.mark.skipif(not FAKE_REPL.is_file(), reason="tests/prover/fake_repl.py (prover's REPL double) is absent")
def test_proof_jobs_reach_lean_and_the_model_worker(ray_cluster, tmp_path):
    from workers.demo import random_tiny_checkpoint

    ckpt = random_tiny_checkpoint(tmp_path / "tiny")
    pool = WorkerPool(PoolConfig(coder_workers=0, prover_workers=1, repl_command=[sys.executable, str(FAKE_REPL)],
                                 model={"backend": {"checkpoint": str(ckpt)}}))
    theorem = {"name": "four", "header": "import Mathlib\n", "statement": "theorem four : 2 + 2 = 4 :="}
    search = {"budget_seconds": 60, "max_expansions": 3, "num_candidates": 2, "max_samples": 2}
    try:
        out = {}
        pool.run("proof", [(0, theorem)], {"search": search, "generator": "builtin"}, out.__setitem__)
        pool.run("proof", [(1, theorem)], {"search": {**search, "algorithm": "sample"}, "generator": "model",
                                           "generation": {"max_proof_tokens": 8, "seed": 0}}, out.__setitem__)
        stats = pool.model_info()["stats"]
    finally:
        pool.shutdown()
    assert out[0]["status"] == "proved" and out[0]["proof"] and out[0]["generator"] == "builtin"
    assert out[1]["status"] in ("proved", "failed"), out[1]  # a random model: no error is what matters
    assert out[1]["samples"] >= 1 and stats["prompts"] >= 1  # its proposals came from the model worker


def test_concurrent_jobs_share_the_workers_and_each_gets_all_its_items(ray_cluster):
    pool = WorkerPool(PoolConfig(coder_workers=2, in_flight_per_worker=1, model={"enabled": False}))
    outs = [{}, {}]
    try:
        threads = [threading.Thread(target=lambda o=o, n=n: o.update(run(pool, canonical_samples(n))))
                   for o, n in zip(outs, (12, 9))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=300)
        assert pool.group("grading").load == [0, 0]  # every slot given back
    finally:
        pool.shutdown()
    assert [sorted(o) for o in outs] == [list(range(12)), list(range(9))]
    assert all(len(v) == 1 and v[0]["passed"] for o in outs for v in o.values())
