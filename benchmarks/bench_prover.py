"""Lean REPL pool throughput: proofcode's pool vs a fresh REPL process per proof (DeepSeek-Prover-V1.5).

    python benchmarks/bench_prover.py [--quick] [--import-delay 4] [--command-delay 0.02]
                                      [--workers 1 2 4] [--header-keyed] [--no-service]

Workload: 100 theorems, 50 from miniF2F and 50 from ProofNet (../shared/fixtures/lean/minif2f/), with
their real headers (15 distinct headers, 2 distinct import sets), each checked with a proof.
Lean is the test suite's fake REPL (tests/prover/fake_repl.py), a real subprocess that sleeps
`--import-delay` seconds for a command with `import` and `--command-delay` seconds for every command.
The default import delay (4 s) is half the published `import Mathlib` time of an idle cloud box
(about 8 s, with `example : 1 + 1 = 2 := rfl` then elaborating in 0.02 s, the default command delay:
https://tangled.org/zzstoatzz.io/notes/blob/main/math/lean-mathlib.md, Lean v4.35), halved to keep the
run to a few minutes; a longer import only widens the pool's lead. Since the delays are sleeps, the
throughput is meaningful on a loaded machine; the overhead column (wall time minus the REPL's own,
per command) is CPU time and is not.

Rows, at equal worker counts:
- `pool`: proofcode's `ReplEnv` (pool_size = workers) and `final_check` in `workers` threads, as the
  service runs it: check in the header's environment, then `#print axioms`.
- `process/proof`: what DeepSeek-Prover-V1.5's verifier does: a new REPL per theorem, sent
  header + statement + proof as one command (no axiom check), then closed. Stateless, so it runs on
  `--process-sample` theorems only and its throughput is theorems/s of that sample.
- `header-keyed` (`--header-keyed`): our pool keyed by the whole header, without the import/rest split
  (Kimina Lean Server's caching), so each distinct header pays an import.
Then the service: `POST /v1/proofs` with the 100 theorems (built-in generator, best-first search)
on 2 prover workers, against the same search in this process on a 2-process pool.
"""
from __future__ import annotations

import os

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from concurrent.futures import ThreadPoolExecutor  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FAKE = ROOT / "tests" / "prover" / "fake_repl.py"
FIXTURES = ROOT.parent / "shared" / "fixtures" / "lean" / "minif2f"
PROOF = "by\n  norm_num"
SEARCH = {"algorithm": "best_first", "budget_seconds": 120, "max_expansions": 8}


@dataclass
class Row:
    name: str
    workers: int
    theorems: int
    accepted: int
    wall: float
    busy: float  # summed per-theorem wall time of the worker threads
    imports: int = 0
    commands: int = 0
    repl_s: float = 0.0

    @property
    def throughput(self) -> float:
        return self.theorems / self.wall

    @property
    def overhead_ms(self) -> float:
        """Per command: time the callers waited beyond what the REPL itself spent."""
        return 1000 * (self.busy - self.repl_s) / max(self.commands, 1)


def workload(n: int) -> list:
    """n theorems: half miniF2F, half ProofNet (every 7th, for more distinct headers)."""
    from prover import load_theorems

    minif2f = load_theorems(FIXTURES / "minif2f.jsonl")
    proofnet = load_theorems(FIXTURES / "proofnet.jsonl")[::7]
    return minif2f[: n - n // 2] + proofnet[: n // 2]


class FakeLean:
    """The fake REPL's argv for one row, with its own command log and timing log."""

    def __init__(self, tmp: Path, name: str, args):
        self.log, self.timing = tmp / f"{name}.log", tmp / f"{name}.timing"
        self.argv = [sys.executable, str(FAKE), "--import-delay", str(args.import_delay),
                     "--command-delay", str(args.command_delay), "--log", str(self.log), "--timing", str(self.timing)]

    def fill(self, row: Row) -> Row:
        """Imports paid, commands and the REPL's own seconds, read from the fake REPL's logs."""
        sent = [json.loads(line) for line in self.log.read_text(encoding="utf-8").splitlines()]
        row.imports = sum(any(l.startswith("import ") for l in c.get("cmd", "").splitlines()) for c in sent)
        timings = [json.loads(line) for line in self.timing.read_text(encoding="utf-8").splitlines()]
        row.commands = sum("seconds" in t for t in timings)
        # the REPL's own time: its commands and its process start-up (Lean's start, here Python's)
        row.repl_s = sum(t.get("seconds", 0.0) + t.get("startup", 0.0) for t in timings)
        return row


def _timed_map(fn, items, workers: int) -> tuple[float, float, list]:
    """(wall, summed per-item time, results) of fn over items in `workers` threads."""
    def one(item):
        t0 = time.perf_counter()
        out = fn(item)
        return time.perf_counter() - t0, out

    t0 = time.perf_counter()
    with ThreadPoolExecutor(workers) as ex:
        done = list(ex.map(one, items))
    return time.perf_counter() - t0, sum(d for d, _ in done), [o for _, o in done]


def run_pool(name: str, theorems, workers: int, fake: FakeLean, split_imports: bool = True) -> Row:
    from prover import ReplConfig, ReplEnv, final_check

    env = ReplEnv(ReplConfig(repl_command=fake.argv, pool_size=workers, respawn=False))
    env.pool.split_imports = split_imports
    with env:
        wall, busy, verdicts = _timed_map(lambda t: final_check(t, PROOF, env, timeout=60), theorems, workers)
    return fake.fill(Row(name, workers, len(theorems), sum(v.accepted for v in verdicts), wall, busy))


def run_process_per_proof(theorems, workers: int, fake: FakeLean) -> Row:
    """DeepSeek-Prover-V1.5's verifier: start a REPL, send the whole file as one command, stop it."""
    from prover.repl_process import ReplProcess

    def one(thm) -> bool:
        proc = ReplProcess(fake.argv)
        try:
            resp = proc.send({"cmd": thm.header + thm.statement.rstrip() + " " + PROOF}, 600)
        finally:
            proc.close(grace=5)
        return not resp.errors and not resp.sorries and not resp.error

    wall, busy, ok = _timed_map(one, theorems, workers)
    return fake.fill(Row("process/proof", workers, len(theorems), sum(ok), wall, busy))


def run_search_in_process(theorems, workers: int, fake: FakeLean) -> Row:
    import prover

    config = prover.SearchConfig(**SEARCH)
    with prover.ReplEnv(prover.ReplConfig(repl_command=fake.argv, pool_size=workers)) as env:
        wall, busy, results = _timed_map(
            lambda t: prover.search(t, env, prover.BuiltinGenerator(), config), theorems, workers)
    return fake.fill(Row("search in-process", workers, len(theorems),
                         sum(r.status == "proved" for r in results), wall, busy))


def run_service(theorems, workers: int, fake: FakeLean, tmp: Path) -> tuple[Row, float]:
    """POST /v1/proofs on a service with `workers` prover workers; (row, seconds to start the service)."""
    import ray
    import uvicorn

    from workers.client import ServiceClient
    from workers.config import PoolConfig, ServiceConfig
    from workers.service import create_app

    t0 = time.perf_counter()
    # a Ray of our own, not one another program started on this machine (ray.init would join it)
    ray.init(address="local", num_cpus=workers + 1, include_dashboard=False, log_to_driver=False,
             configure_logging=False)
    cfg = ServiceConfig(db=str(tmp / "jobs.sqlite"), pool=PoolConfig(
        coder_workers=0, prover_workers=workers, repl_command=fake.argv, in_flight_per_worker=1,
        model={"enabled": False}))
    server = uvicorn.Server(uvicorn.Config(create_app(cfg), host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("the service did not start (see the log above)")
            time.sleep(0.05)
        client = ServiceClient(f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}")
        started = time.perf_counter() - t0
        items = [{"name": t.name, "header": t.header, "statement": t.statement} for t in theorems]
        t0 = time.perf_counter()
        job = client.submit_proofs(items, search=SEARCH, generator="builtin")
        client.wait("proof", job["id"], poll_s=0.05, progress=False)
        wall = time.perf_counter() - t0
        results = client.results("proof", job["id"])
    finally:
        server.should_exit = True
        thread.join(timeout=120)
        ray.shutdown()
    proved = sum(r.get("status") == "proved" for r in results)
    return fake.fill(Row("service POST /v1/proofs", workers, len(theorems), proved, wall, wall * workers)), started


def print_rows(rows: list[Row]) -> None:
    print(f"{'side':<24} {'workers':>7} {'theorems':>8} {'accepted':>8} {'imports':>7} {'commands':>8} "
          f"{'wall s':>7} {'theorems/s':>10} {'overhead ms/cmd':>15}")
    for r in rows:
        print(f"{r.name:<24} {r.workers:>7} {r.theorems:>8} {r.accepted:>8} {r.imports:>7} {r.commands:>8} "
              f"{r.wall:>7.2f} {r.throughput:>10.2f} {r.overhead_ms:>15.2f}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="40 theorems, 1 s imports, 8 processes per proof (a smoke run)")
    ap.add_argument("--theorems", type=int, default=100)
    ap.add_argument("--import-delay", type=float, default=4.0, help="seconds the fake REPL takes for `import ...`")
    ap.add_argument("--command-delay", type=float, default=0.02, help="seconds the fake REPL takes per command")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--process-sample", type=int, default=12, help="theorems checked process-per-proof")
    ap.add_argument("--header-keyed", action="store_true", help="add rows for a pool keyed by the whole header")
    ap.add_argument("--no-service", action="store_true", help="skip the POST /v1/proofs comparison (needs Ray)")
    args = ap.parse_args(argv)
    from prover.repl_pool import split_header

    if args.quick:
        args.theorems, args.import_delay, args.process_sample = 40, 1.0, 8
    theorems = workload(args.theorems)
    # the process-per-proof sample mixes both import sets like the full workload
    sample = [theorems[i * len(theorems) // args.process_sample] for i in range(args.process_sample)]
    n_imports = len({split_header(t.header)[0] for t in theorems})
    print(f"{len(theorems)} theorems, {len({t.header for t in theorems})} distinct headers, {n_imports} import sets; "
          f"fake REPL: import {args.import_delay:g} s, command {args.command_delay:g} s", file=sys.stderr)

    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        for w in args.workers:
            rows.append(run_pool("pool", theorems, w, FakeLean(tmp, f"pool{w}", args)))
            rows.append(run_process_per_proof(sample, w, FakeLean(tmp, f"pp{w}", args)))
            if args.header_keyed:
                rows.append(run_pool("header-keyed pool", theorems, w, FakeLean(tmp, f"hk{w}", args), False))
            print(f"done: {w} worker(s)", file=sys.stderr)
        service = None
        if not args.no_service:
            local = run_search_in_process(theorems, 2, FakeLean(tmp, "search2", args))
            served, started = run_service(theorems, 2, FakeLean(tmp, "service2", args), tmp)
            service = (local, served, started)

    print(f"\nLean checks of {len(theorems)} theorems ({n_imports} import sets), fake REPL with "
          f"{args.import_delay:g} s imports and {args.command_delay:g} s commands (sleeps), {os.cpu_count()} cores")
    print_rows(rows)
    for w in args.workers:
        pool = next(r for r in rows if r.name == "pool" and r.workers == w)
        print(f"pool x{w}: {pool.imports / (n_imports * w):.2f} imports per import set per worker (target <= 1), "
              f"overhead {pool.overhead_ms:.2f} ms/command (target <= 2)")
    if service is not None:
        local, served, started = service
        print()
        print_rows([local, served])
        print(f"service start-up (Ray + 2 prover workers): {started:.1f} s, not in the wall time above")
        print(f"service overhead per theorem over the in-process search: "
              f"{1000 * (served.wall - local.wall) / len(theorems):.1f} ms")
    for w in args.workers:
        pool = next(r for r in rows if r.name == "pool" and r.workers == w)
        pp = next(r for r in rows if r.name == "process/proof" and r.workers == w)
        print(f"ratio pool/process-per-proof at {w} workers: {pool.throughput / pp.throughput:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
