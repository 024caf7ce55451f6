"""Checker worker process: `python -m coder.math.worker --memory-mb N`.

Reads one JSON request per line on stdin, answers one JSON line each on the original stdout.
The parent (coder.math.pool) owns the timeout: it kills this process when a check runs too long,
which works from any thread, unlike signal.alarm.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time


def _limit_memory(memory_mb: int) -> None:
    # A runaway `10^{10^{10}}` then fails with MemoryError here instead of swapping the machine.
    if memory_mb <= 0:
        return
    try:
        import resource

        limit = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (ImportError, ValueError, OSError):
        pass  # no rlimits on this platform: the parent's timeout still bounds the check


def _exit_with_parent(parent: int) -> None:
    # A worker stuck in a long computation never reads stdin's EOF, so it watches its parent.
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, daemon=True, name="parent-watch").start()


def _answer(request: dict) -> dict:
    from coder.math.compare import check_parsed
    from coder.math.policy import AnswerPolicy

    try:
        return check_parsed(request["predicted"], request["reference"], request["rel_tol"], request["abs_tol"],
                            AnswerPolicy(**request.get("policy", {})))
    except MemoryError:
        detail = "ran out of memory (an answer evaluates to something huge)"
    except RecursionError:
        detail = "expression nested too deeply"
    except Exception as exc:  # sympy can fail in many ways on odd input; report, keep serving
        detail = f"{type(exc).__name__}: {exc}"[:500]
    return {"equivalent": False, "reason": "error", "predicted_parsed": None,
            "reference_parsed": None, "error": f"checking failed: {detail}"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--memory-mb", type=int, default=2048)
    args = parser.parse_args(argv)
    # Replies go to a private copy of stdout; stray prints from libraries go to stderr.
    reply = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    _exit_with_parent(os.getppid())
    _limit_memory(args.memory_mb)
    import coder.math.compare  # noqa: F401  (sympy import happens before "ready")

    reply.write(json.dumps({"ready": True}) + "\n")
    for line in sys.stdin:
        if line.strip():
            reply.write(json.dumps(_answer(json.loads(line))) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
