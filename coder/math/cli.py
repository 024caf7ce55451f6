"""`proofcode check-answer PREDICTED REFERENCE`: are two math answers equivalent?

Exit status: 0 equivalent, 1 not equivalent (including a timeout), 2 an answer could not be
parsed or the checker failed.
"""
from __future__ import annotations

import argparse
import json
import sys


def register(subparsers) -> None:
    """Add the `check-answer` subcommand."""
    from coder.math.answer import DEFAULT_ABS_TOL, DEFAULT_REL_TOL

    p = subparsers.add_parser(
        "check-answer",
        help="decide whether two math answers are equivalent (exit 0 yes, 1 no, 2 unparseable)",
        description="Compare a predicted math answer with a reference: numbers, fractions, percentages, "
                    "LaTeX (\\boxed, \\frac, \\sqrt), intervals, sets, tuples, matrices, equations. "
                    "Exit 0 when equivalent, 1 when not (or timed out), 2 when an answer cannot be parsed. "
                    "Put `--` before answers that start with '-' and are not numbers.",
    )
    p.add_argument("predicted", help="the answer to check, e.g. '\\frac{1}{2}' or '0.5'")
    p.add_argument("reference", help="the correct answer")
    p.add_argument("--timeout", type=float, default=5.0, metavar="S",
                   help="seconds allowed for the check (default 5); past it the answer counts as not equivalent")
    p.add_argument("--rel-tol", type=float, default=DEFAULT_REL_TOL,
                   help=f"relative tolerance for numeric comparison (default {DEFAULT_REL_TOL:g})")
    p.add_argument("--abs-tol", type=float, default=DEFAULT_ABS_TOL,
                   help=f"absolute tolerance for numeric comparison (default {DEFAULT_ABS_TOL:g})")
    p.add_argument("--extract", action="store_true",
                   help="PREDICTED is a whole model response: check its final answer (\\boxed{}, '#### N', ...)")
    p.add_argument("--json", action="store_true", help="print the verdict as one JSON object")
    p.set_defaults(func=run_check_answer)


def exit_code(verdict) -> int:
    """0 equivalent, 1 not equivalent or timed out, 2 unparseable / checker error."""
    if verdict.equivalent:
        return 0
    return 2 if verdict.reason in ("unparseable", "error") else 1


def run_check_answer(args: argparse.Namespace) -> int:
    """Check one pair and print the verdict; returns the exit status."""
    from coder.math.answer import check_answer, extract_answer

    predicted = args.predicted
    if args.extract:
        predicted = extract_answer(args.predicted)
        if predicted is None:
            raise ValueError("--extract: no final answer (\\boxed{}, '#### N', 'the answer is', a number) "
                             "found in PREDICTED")
    verdict = check_answer(predicted, args.reference, timeout=args.timeout,
                           rel_tol=args.rel_tol, abs_tol=args.abs_tol)
    code = exit_code(verdict)
    if args.json:
        print(json.dumps(verdict.model_dump() | {"predicted": predicted, "reference": args.reference}))
        return code
    if code == 2:
        print(f"proofcode check-answer: error: {verdict.error}", file=sys.stderr)
        return code
    headline = "equivalent" if verdict.equivalent else "not equivalent"
    print(f"{headline} ({verdict.reason})")
    print(f"  predicted: {verdict.predicted_parsed if verdict.predicted_parsed is not None else predicted}")
    print(f"  reference: {verdict.reference_parsed if verdict.reference_parsed is not None else args.reference}")
    if verdict.error:
        print(f"  note: {verdict.error}")
    return code
