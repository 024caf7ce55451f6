"""Math answer checking: proofcode's check_answer vs HuggingFace math-verify on the same cases.

    python benchmarks/bench_math.py [--gsm8k N] [--threads T] [--repeat R]

Cases (benchmarks/math_cases.py, written for this project): plain numbers, MATH-style LaTeX answers,
relations, matrices, sets and lists, free-text completions; plus N GSM8K reference solutions from
../shared/fixtures/math/gsm8k_test.jsonl (each solution against its own `#### N`, a boxed rewrite and
an off-by-one wrong answer). Both checkers read the whole reference and the whole response: proofcode
with extract_answer on both then check_answer, math-verify with parse on both then verify.
Prints agreement with the expected verdicts and false "equal"s per checker and category, calls per
second single-threaded and from a thread pool, and the ratio line. math-verify is an optional peer
(`pip install -e .[bench]`); without it only proofcode's rows are printed.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from math_cases import CASES  # noqa: E402

GSM8K = ROOT.parent / "shared" / "fixtures" / "math" / "gsm8k_test.jsonl"


def gsm8k_cases(n: int) -> list[tuple[str, str, bool]]:
    """(reference, response, expected) from the first `n` GSM8K test rows."""
    if n <= 0 or not GSM8K.exists():
        return []
    cases = []
    with open(GSM8K, encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh if line.strip()][:n]
    for row in rows:
        solution, final = row["answer"], row["answer"].split("####")[-1].strip()
        wrong = str(int(final.replace(",", "")) + 1)
        body = solution.split("####")[0].strip()
        cases += [(final, solution, True), (final, f"{body}\nSo the answer is $\\boxed{{{final.replace(',', '')}}}$.", True),
                  (final, f"{body}\nThe answer is {wrong}.", False)]
    return cases


def proofcode_checker():
    from coder import check_answer, extract_answer

    def check(reference: str, response: str) -> bool:
        gold, pred = extract_answer(reference), extract_answer(response)
        return gold is not None and pred is not None and check_answer(pred, gold).equivalent
    return check


def math_verify_checker(threaded: bool):
    try:
        from math_verify import parse, verify
    except ImportError:
        return None
    # math-verify's own timeouts use signal.alarm, which works only in the main thread.
    limit = None if threaded else 5
    logging.getLogger("math_verify").setLevel(logging.ERROR)  # it warns on every call without a timeout

    def check(reference: str, response: str) -> bool:
        try:
            return bool(verify(parse(reference, parsing_timeout=limit), parse(response, parsing_timeout=limit),
                               timeout_seconds=limit))
        except Exception:  # a crash counts as "not equal"
            return False
    return check


def run(check, cases, threads: int) -> tuple[list[bool], float]:
    start = time.perf_counter()
    if threads <= 1:
        got = [check(g, p) for g, p, _ in cases]
    else:
        with ThreadPoolExecutor(max_workers=threads) as ex:
            got = list(ex.map(lambda c: check(c[0], c[1]), cases))
    return got, time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gsm8k", type=int, default=100, help="GSM8K rows to use (3 cases each; default 100)")
    ap.add_argument("--threads", type=int, default=8, help="thread-pool size for the threaded timing (default 8)")
    ap.add_argument("--repeat", type=int, default=1, help="timed passes over the cases per mode (default 1)")
    args = ap.parse_args(argv)

    groups = dict(CASES) | {"gsm8k": gsm8k_cases(args.gsm8k)}
    cases = [(g, p, e, cat) for cat, cs in groups.items() for g, p, e in cs]
    flat = [(g, p, e) for g, p, e, _ in cases]
    sides = {"proofcode": (proofcode_checker(), proofcode_checker())}
    mv = math_verify_checker(False)
    if mv is not None:
        sides["math-verify"] = (mv, math_verify_checker(True))
    else:
        print("math-verify not installed (pip install -e .[bench]): its rows and the ratio are skipped")
    sides["proofcode"][0]("1", "1")  # start the checker pool (sympy import) outside the timing

    print(f"{len(flat)} cases: " + ", ".join(f"{cat} {len(cs)}" for cat, cs in groups.items())
          + f"; thread pool of {args.threads}")
    print(f"{'checker':<12} {'agree':>9} {'false_eq':>8} {'calls/s 1 thread':>17} {f'calls/s {args.threads} threads':>18}")
    speed = {}
    for name, (single, threaded) in sides.items():
        got, t1 = run(single, flat, 1)
        t1 = min([t1] + [run(single, flat, 1)[1] for _ in range(args.repeat - 1)])
        tn = min(run(threaded, flat, args.threads)[1] for _ in range(args.repeat))
        agree = sum(g == e for g, (_, _, e) in zip(got, flat))
        false_eq = sum(g and not e for g, (_, _, e) in zip(got, flat))
        speed[name] = (len(flat) / t1, len(flat) / tn)
        print(f"{name:<12} {agree:>4}/{len(flat):<4} {false_eq:>8} {speed[name][0]:>17.1f} {speed[name][1]:>18.1f}")
        per_cat = {}
        for g, (_, _, e, cat) in zip(got, cases):
            ok, n = per_cat.get(cat, (0, 0))
            per_cat[cat] = (ok + (g == e), n + 1)
        print("    " + ", ".join(f"{cat} {ok}/{n}" for cat, (ok, n) in per_cat.items()))
    if "math-verify" in speed:
        pc, mvs = speed["proofcode"], speed["math-verify"]
        print(f"ratio proofcode/math-verify: {pc[0] / mvs[0]:.2f}x calls/s single-threaded, "
              f"{pc[1] / mvs[1]:.2f}x from {args.threads} threads")
    return 0


if __name__ == "__main__":
    sys.exit(main())
