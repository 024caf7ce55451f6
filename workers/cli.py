"""The `proofcode` command: one entry point; each package registers its own subcommands."""
from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback

# Each module defines `register(subparsers)`; a subcommand sets `func(args) -> int`.
# The commands each registers: a run imports only its command's module (`grade` does not pay for
# torch, pydantic models or Ray in the others); help and unknown commands import them all.
COMMANDS = {
    "core_model.cli": ("train", "generate"),
    "coder.cli": ("grade", "sandbox-info"),
    "coder.math.cli": ("check-answer",),
    "prover.cli": ("prove",),
    "workers.service_cli": ("serve", "demo"),
    "workers.rl_cli": ("rl",),
}
COMMAND_MODULES = tuple(COMMANDS)


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser; given the command line, with only the module of the command it names."""
    parser = argparse.ArgumentParser(
        prog="proofcode",
        description="Prove Lean 4 theorems, grade code and math answers, and train on the results.",
    )
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    command = next((a for a in argv or [] if not a.startswith("-")), None)
    modules = [m for m, names in COMMANDS.items() if command in names] or COMMAND_MODULES
    for name in modules:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # that part of the product is not installed in this build
                continue
            raise
        module.register(sub)
    return parser


# Defaults set here at the edge before anything imports lean_dojo: no remote trace cache. The local-Ray
# defaults (bind to 127.0.0.1, no usage stats) are `workers.pool.LOCAL_RAY_ENV`, set by `init_ray` only
# when proofcode starts its own Ray: a cluster joined with --address/RAY_ADDRESS keeps its settings.
LOCAL_ENV_DEFAULTS = {
    "DISABLE_REMOTE_CACHE": "1",
}


def main(argv: list[str] | None = None, *, quick_exit: bool = False) -> int:
    """Run the command in `argv`; its exit status. With `quick_exit` (the `proofcode` program itself), a
    command that leaves nothing to tear down (`set_defaults(quick_exit=True)`) ends the process at once."""
    for key, value in LOCAL_ENV_DEFAULTS.items():
        os.environ.setdefault(key, value)
    parser = build_parser(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    elsewhere = getattr(args, "server", None) or getattr(args, "ray", None)  # `grade`/`prove` on a service or Ray
    code = _run_command(args, elsewhere)
    if quick_exit and getattr(args, "quick_exit", False) and not elsewhere:
        # Skips the interpreter's teardown (freeing every module's objects: ~20 ms once pydantic is
        # imported), which such a command does not need: its files are closed, and its fork servers
        # exit when their sockets close. Ray's atexit shutdown is why a --ray run never takes this.
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):  # a closed pipe (`| head`) or stream: nothing more to deliver
                pass
        os._exit(code)
    return code


def _run_command(args: argparse.Namespace, elsewhere) -> int:
    try:
        if elsewhere:
            from workers.executors import run_elsewhere

            return int(run_elsewhere(args) or 0)
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # users get one clear line; --debug shows where it came from
        if isinstance(exc, BrokenPipeError) and _stdout_gone():
            # The reader of our output left (`| head`): no message, and the shell's status for a writer whose
            # pipe closed (results files are already written). stdout goes to /dev/null so the exit's flush
            # cannot fail too.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 141
        if args.debug or os.environ.get("PROOFCODE_DEBUG"):
            traceback.print_exc()
        print(f"proofcode {args.command}: error: {exc}", file=sys.stderr)
        return 2


def _stdout_gone() -> bool:
    """Whether stdout is a pipe nobody reads any more (poll reports an error on its write end)."""
    import select

    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & select.POLLERR for _, events in poller.poll(0))
    except (OSError, ValueError, AttributeError):
        return False


def run() -> None:
    """The `proofcode` program (console script and `python -m workers.cli`)."""
    sys.exit(main(quick_exit=True))


if __name__ == "__main__":
    run()
