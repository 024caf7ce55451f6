"""Process-based timeouts: from worker threads, concurrently, with hung workers replaced, in Ray."""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from coder import check_answer
from coder.math.pool import CheckerPool, WorkerFailed, WorkerTimeout

SLACK = 60.0  # generous bound for a loaded 2-core machine: the point is that it returns at all

PATHOLOGICAL = [
    "(10^8)!",  # factorial(100000000): minutes of bignum work
    "2^{2^{2^{2^{2^{2}}}}}",  # a power tower far past any memory
    "10^{10^{10}}",
]


@pytest.mark.parametrize("answer", PATHOLOGICAL)
def test_pathological_answer_times_out_from_a_worker_thread(answer):
    with ThreadPoolExecutor(max_workers=1) as ex:  # not the main thread: signal.alarm could not work here
        start = time.monotonic()
        verdict = ex.submit(check_answer, answer, "1", timeout=1.0).result()
        elapsed = time.monotonic() - start
    assert not verdict.equivalent
    assert verdict.reason in {"timeout", "error"}, verdict  # "error": ran out of the worker's memory first
    assert verdict.error
    assert elapsed < 1.0 + SLACK


def test_factorial_timeout_is_reported_as_timeout():
    verdict = check_answer("(10^8)!", "1", timeout=0.5)
    assert verdict.reason == "timeout"
    assert "0.5 s" in verdict.error


def test_pool_recovers_after_a_timeout_and_serves_many_threads():
    assert check_answer("(10^8)!", "1", timeout=0.5).reason == "timeout"
    pairs = [(rf"\frac{{{k}}}{{2}}", str(k / 2)) for k in range(1, 41)] + [("x^2-1", "(x+1)(x-1)")] * 4
    with ThreadPoolExecutor(max_workers=8) as ex:
        verdicts = list(ex.map(lambda p: check_answer(*p), pairs))
    assert all(v.equivalent for v in verdicts), [v for v in verdicts if not v.equivalent]


def test_a_hung_check_and_a_normal_one_run_side_by_side():
    with ThreadPoolExecutor(max_workers=2) as ex:
        slow = ex.submit(check_answer, "(10^8)!", "1", timeout=3.0)
        fast = ex.submit(check_answer, r"\sqrt{8}", r"2\sqrt2", timeout=30.0)
        assert fast.result().reason == "exact"
        assert slow.result().reason == "timeout"


def test_checker_pool_kills_and_replaces_a_hung_worker():
    pool = CheckerPool(size=1, memory_mb=1024)
    try:
        request = {"predicted": "(10^8)!", "reference": "1", "rel_tol": 1e-6, "abs_tol": 0.0}
        first = pool._acquire()
        pid = first.proc.pid
        pool._release(first, healthy=True)
        with pytest.raises(WorkerTimeout):
            pool.call(request, timeout=0.5)
        assert first.proc.poll() is not None  # the hung process is gone
        ok = pool.call({**request, "predicted": "1"}, timeout=30)
        assert ok["equivalent"] is True
        replacement = pool._acquire()
        assert replacement.proc.pid != pid
        pool._release(replacement, healthy=True)
    finally:
        pool.close()


@pytest.mark.ray
def test_timeout_inside_a_ray_actor(ray_cluster):
    ray = ray_cluster

    @ray.remote(num_cpus=0)
    class Grader:
        def check(self, predicted, reference, timeout):
            from coder import check_answer as check

            return check(predicted, reference, timeout=timeout).model_dump()

        def check_in_thread(self, predicted, reference, timeout):
            with ThreadPoolExecutor(max_workers=1) as ex:
                return ex.submit(self.check, predicted, reference, timeout).result()

    grader = Grader.remote()
    ok = ray.get(grader.check.remote(r"\frac{1}{2}", "0.5", 5.0), timeout=120)
    hung = ray.get(grader.check_in_thread.remote("(10^8)!", "1", 1.0), timeout=120)
    assert ok["equivalent"] and ok["reason"] == "exact"
    assert hung["reason"] == "timeout" and not hung["equivalent"]
    ray.kill(grader)


def test_a_worker_that_dies_is_reported_and_replaced():
    pool = CheckerPool(size=1)
    try:
        worker = pool._acquire()
        worker.proc.kill()  # e.g. the OOM killer
        worker.proc.wait()
        pool._release(worker, healthy=True)
        with pytest.raises(WorkerFailed, match="exited"):
            pool.call({"predicted": "1", "reference": "1", "rel_tol": 1e-6, "abs_tol": 0.0}, timeout=30)
        again = pool.call({"predicted": "2", "reference": "2.0", "rel_tol": 1e-6, "abs_tol": 0.0}, timeout=30)
        assert again["equivalent"] is True
    finally:
        pool.close()
    with pytest.raises(WorkerFailed, match="closed"):
        pool.call({"predicted": "1", "reference": "1", "rel_tol": 1e-6, "abs_tol": 0.0}, timeout=30)
