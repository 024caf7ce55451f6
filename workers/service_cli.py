"""`proofcode serve` (the job service over HTTP) and `proofcode demo` (the whole loop on a laptop)."""
from __future__ import annotations

import argparse
import os
import sys


def register(subparsers) -> None:
    p = subparsers.add_parser("serve", help="run the job service (HTTP API, OpenAPI docs at /docs)",
                              description="Run the proofcode job service: a worker pool on Ray behind an HTTP API.")
    p.add_argument("--host", default=None, help="bind address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=None, help="port (default 8000)")
    p.add_argument("--config", default=None, help="ServiceConfig JSON file (see docs/workers.md)")
    p.add_argument("--address", default=None,
                   help="Ray cluster to join ('auto', host:port); default $RAY_ADDRESS, else a local Ray")
    p.add_argument("--db", default=None, help="SQLite job database (default proofcode-jobs.sqlite)")
    p.add_argument("--token", default=None, help="require 'Authorization: Bearer TOKEN' (default $PROOFCODE_TOKEN)")
    p.add_argument("--coder-workers", type=int, default=None, help="number of coder workers")
    p.add_argument("--prover-workers", type=int, default=None, help="number of prover workers")
    p.set_defaults(func=serve)

    d = subparsers.add_parser("demo", help="generate HumanEval completions with the tiny model and grade them",
                              description="Start a local pool with the embedded tiny model, generate HumanEval "
                                          "completions, grade them in the sandbox pool, print pass@1.")
    d.add_argument("--limit", type=int, default=20, help="number of HumanEval problems (0 = all 164)")
    d.add_argument("--workers", type=int, default=2, help="coder workers")
    d.add_argument("--max-new-tokens", type=int, default=96, help="tokens generated per problem")
    d.add_argument("--temperature", type=float, default=0.0, help="0 = greedy")
    d.add_argument("--checkpoint", default=None, help="model dir (default: the embedded tiny model)")
    d.add_argument("--out", default="proofcode-demo", help="directory for samples and results")
    d.add_argument("--address", default=None, help="Ray cluster to join; default $RAY_ADDRESS, else a local Ray")
    d.add_argument("--no-sanity", action="store_true", help="skip grading the canonical solutions")
    d.set_defaults(func=demo)


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    from .config import load_config
    from .service import create_app

    pool_overrides = {}
    config = load_config(
        args.config, host=args.host, port=args.port, db=args.db,
        token=args.token or os.environ.get("PROOFCODE_TOKEN"),
        ray_address=args.address or os.environ.get("RAY_ADDRESS"),
    )
    if args.coder_workers is not None:
        pool_overrides["coder_workers"] = args.coder_workers
    if args.prover_workers is not None:
        pool_overrides["prover_workers"] = args.prover_workers
    if pool_overrides:
        config = config.model_copy(update={"pool": config.pool.model_copy(update=pool_overrides)})
    if config.host not in ("127.0.0.1", "localhost", "::1") and not config.token:
        print(f"warning: serving on {config.host} without a token; anyone who can reach it can run jobs",
              file=sys.stderr)
    _check_bindable(config.host, config.port)
    _check_db(config.db)
    from .pool import init_ray

    # Ray first: ray.init installs its own SIGTERM handler, and uvicorn's (graceful shutdown) must win.
    init_ray(config.ray_address, config.pool)
    print(f"proofcode service: http://{config.host}:{config.port} (API docs at /docs), jobs in {config.db}",
          file=sys.stderr)
    uvicorn.run(create_app(config), host=config.host, port=config.port, log_level="warning")
    return 0


def _check_db(db: str) -> None:
    """Fail before starting Ray when the job database cannot be opened (one line: which file, why, the fix)."""
    import sqlite3

    from .jobs import JobStore

    try:
        JobStore(db).close()
    except (OSError, sqlite3.Error) as exc:
        raise OSError(f"cannot open the job database {db} ({type(exc).__name__}: {exc}); pass a writable "
                      "--db path (or fix the file's permissions)") from None


def _check_bindable(host: str, port: int) -> None:
    """Fail before starting Ray when the address is taken (uvicorn would only log it)."""
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            raise OSError(f"cannot listen on {host}:{port} ({exc.strerror}); pick another --port or stop "
                          "what is using it") from None


def demo(args: argparse.Namespace) -> int:
    from .demo import DemoConfig, run_demo

    cfg = DemoConfig(
        limit=args.limit, coder_workers=args.workers, max_new_tokens=args.max_new_tokens,
        temperature=args.temperature, checkpoint=args.checkpoint, out=args.out,
        ray_address=args.address or os.environ.get("RAY_ADDRESS"), sanity=not args.no_sanity,
    )
    return run_demo(cfg)
