"""`proofcode check-answer PREDICTED REFERENCE`: are two math answers equivalent?

Exit status: 0 equivalent, 1 not equivalent (including a timeout), 2 an answer could not be
parsed or the checker failed.
"""
from __future__ import annotations

import argparse
import json
import re
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
                    "Answers may start with '-' ('-\\frac{7}{3}', '-x').",
    )
    # Negative answers are everywhere in math: any single-dash word other than -h is an answer,
    # not an unknown option (argparse only lets negative *numbers* through by default).
    p._negative_number_matcher = re.compile(r"^-(?!-|h$)")
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
    _add_policy_flags(p)
    p.set_defaults(func=run_check_answer)


def _add_policy_flags(p) -> None:
    from coder.math.policy import AnswerPolicy

    d = AnswerPolicy()
    g = p.add_argument_group("policy (where graders differ; see docs/coder.md)")
    g.add_argument("--decimal-comma", choices=["auto", "always", "never"], default=d.decimal_comma,
                   help="is 1,22 the number 1.22? (default auto: when it cannot be a thousands separator "
                        "and has 2+ digits after it)")
    g.add_argument("--no-semicolon-lists", dest="semicolon_separates", action="store_false",
                   help="do not read ';' as an item separator")
    g.add_argument("--tuple-matches-set", action="store_true", help="(1, 2) equals {1, 2}")
    g.add_argument("--no-named-lhs", dest="named_lhs_matches_value", action="store_false",
                   help="'AB = 4' does not match 4 (only 'x = 4' does)")
    g.add_argument("--inequality-vs-interval", choices=["both", "reference_inequality", "never"],
                   default=d.inequality_vs_interval,
                   help="when 'x >= 5' and '[5, \\infty)' match (default reference_inequality: an interval "
                        "prediction matches an inequality reference, not the other way round)")
    g.add_argument("--no-bare-percent", dest="percent_matches_bare", action="store_false",
                   help="'28' does not match '28%%' (0.28 still does)")


def _policy(args: argparse.Namespace):
    from coder.math.policy import AnswerPolicy

    return AnswerPolicy(**{name: getattr(args, name) for name in AnswerPolicy.model_fields})


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
            raise ValueError("--extract: no final answer (\\boxed{}, '#### N', 'the answer is', a $math$ "
                             "segment, a standalone number) found in PREDICTED")
    verdict = check_answer(predicted, args.reference, timeout=args.timeout,
                           rel_tol=args.rel_tol, abs_tol=args.abs_tol, policy=_policy(args))
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
