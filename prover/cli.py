"""`proofcode prove INPUT ...`: search proofs for every theorem of a .lean or jsonl file."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "prove", help="prove Lean 4 theorems (a .lean file with `sorry`s, or miniF2F-style jsonl)",
        description="Search a proof for each theorem and append one JSON line per theorem to -o "
                    "(status proved/failed/timeout/error, the proof, final-check reasons, statistics). "
                    "Every reported proof passed the strict final check.")
    p.add_argument("input", help="a .lean file whose theorems end in `sorry`, or jsonl with name/header/formal_statement")
    p.add_argument("--project", help="Lake project with the REPL (and Mathlib if the theorems import it)")
    p.add_argument("--backend", choices=["repl", "dojo"], default="repl")
    p.add_argument("--repl-command", help="command line starting the REPL (default: the project's REPL)")
    p.add_argument("--repo", help="dojo: git URL or local clone LeanDojo traces")
    p.add_argument("--commit", help="dojo: commit to trace")
    p.add_argument("--file", help="dojo: .lean file inside the repo")
    p.add_argument("--search", choices=["best_first", "sample", "mcts"], default="best_first")
    p.add_argument("--budget-seconds", type=float, default=300.0, help="wall time per theorem (default 300)")
    p.add_argument("--max-expansions", type=int, default=200, help="best_first/mcts expansions per theorem")
    p.add_argument("--max-samples", type=int, default=32, help="sample: whole proofs per theorem")
    p.add_argument("--num-candidates", type=int, default=16, help="tactics proposed per state")
    p.add_argument("--tactic-timeout", type=float, default=10.0, help="seconds per tactic")
    p.add_argument("--samples-per-round", type=int, default=4, help="sample: proofs drawn per prefix at once")
    p.add_argument("--parallel", type=int, default=1, help="mcts: leaves expanded concurrently")
    p.add_argument("--workers", type=int, default=1, help="theorems searched concurrently")
    p.add_argument("--generator", choices=["builtin", "model", "openai"], default="builtin")
    p.add_argument("--model", help="model: checkpoint directory")
    p.add_argument("--openai-url", help="openai: base URL of an OpenAI-compatible completions server")
    p.add_argument("--openai-model", default="default", help="openai: the `model` name to request")
    p.add_argument("--openai-api-key", default=os.environ.get("OPENAI_API_KEY"),
                   help="openai: bearer token (default: $OPENAI_API_KEY)")
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("-o", "--output", help="results jsonl (appended; reruns skip recorded names); default stdout")
    p.add_argument("--no-resume", action="store_true", help="search theorems already in the output again")
    p.add_argument("--limit", type=int, default=None, help="only the first N theorems")
    p.add_argument("--server", default=None, help="submit to a running proofcode service at URL instead")
    p.add_argument("--ray", nargs="?", const="local", default=None, metavar="ADDRESS",
                   help="search on a Ray worker pool (REPL backend): a local Ray, or the cluster at ADDRESS")
    p.set_defaults(func=run_prove)


def config_from_args(args: argparse.Namespace):
    """The ProveConfig for parsed `prove` arguments (ValueError with the flag to fix)."""
    from pydantic import ValidationError

    from .generators import GeneratorConfig
    from .run import ProveConfig
    from .proof_search import SearchConfig

    try:
        return ProveConfig(
            backend=args.backend, project=args.project, repl_command=args.repl_command,
            dojo_repo=args.repo, dojo_commit=args.commit, dojo_file=args.file,
            search=SearchConfig(algorithm=args.search, budget_seconds=args.budget_seconds,
                                max_expansions=args.max_expansions, max_samples=args.max_samples,
                                num_candidates=args.num_candidates, tactic_timeout=args.tactic_timeout,
                                samples_per_round=args.samples_per_round, parallel=args.parallel),
            generator=args.generator, model=args.model, openai_url=args.openai_url, openai_model=args.openai_model,
            openai_api_key=args.openai_api_key,
            sampling=GeneratorConfig(temperature=args.temperature, seed=args.seed),
            workers=args.workers, output=args.output, resume=not args.no_resume,
            remote=bool(getattr(args, "server", None)))
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'options'}: {e['msg']}" for e in exc.errors())
        raise ValueError(problems.replace("Value error, ", "")) from None


def run_prove(args: argparse.Namespace, executor=None) -> int:
    """Load the theorems, prove them here or with `executor` (a Ray pool or a service, from `workers`),
    print a one-line summary to stderr. Exit 0 when all ran (3 when some theorem got no verdict)."""
    from proofcode_common import report_ungraded

    from .inputs import load_theorems
    from .run import done_names, job_names, prove_all, summary

    config = config_from_args(args)
    theorems = load_theorems(args.input)[: args.limit]
    skipped = 0
    if config.output and config.resume:
        skipped = len(set(job_names(theorems)) & done_names(Path(config.output)))
    records = prove_all(theorems, config, prover=executor.prover(config) if executor is not None else None)
    where = f"; results in {config.output}" if config.output else ""
    print(summary(records, skipped) + where, file=sys.stderr)
    return report_ungraded(sum(1 for r in records if r.get("ungraded")), len(records), "theorem")
