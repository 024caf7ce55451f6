"""`proofcode check-answer`: verdict text, --json, --extract, --timeout, and exit codes 0/1/2."""
from __future__ import annotations

import argparse
import json
import subprocess
import sys

import pytest

from coder.math import cli as math_cli
from workers.cli import main


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="proofcode")
    math_cli.register(parser.add_subparsers(dest="command"))
    return parser


def _run(argv, capsys):
    args = _parser().parse_args(["check-answer", *argv])
    code = args.func(args)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_equivalent_prints_reason_and_exits_0(capsys):
    code, out, _ = _run([r"\frac{1}{2}", "0.5"], capsys)
    assert code == 0
    assert out.splitlines()[0] == "equivalent (exact)"
    assert "predicted: 1/2" in out


def test_not_equivalent_exits_1_with_why(capsys):
    code, out, _ = _run(["{1,2}", "(1,2)"], capsys)
    assert code == 1
    assert out.splitlines()[0] == "not equivalent (different: a set vs a tuple)"


def test_unparseable_exits_2_with_one_error_line(capsys):
    code, out, err = _run(["1 @ 2", "3"], capsys)
    assert code == 2 and out == ""
    assert err.startswith("proofcode check-answer: error: could not parse the predicted answer '1 @ 2'")


def test_json_output_and_tolerance_flags(capsys):
    code, out, _ = _run(["--json", "--rel-tol", "1e-3", "0.3333", "1/3"], capsys)
    verdict = json.loads(out)
    assert code == 0
    assert verdict["equivalent"] is True and verdict["reason"] == "numeric within tol"
    assert verdict["predicted"] == "0.3333"
    code, out, _ = _run(["--json", "0.3333", "1/3"], capsys)
    assert code == 1 and json.loads(out)["reason"].startswith("different")


def test_timeout_flag_exits_1_and_says_so(capsys):
    code, out, _ = _run(["--timeout", "0.5", "(10^8)!", "1"], capsys)
    assert code == 1
    assert out.splitlines()[0] == "not equivalent (timeout)"
    assert "not decided within 0.5 s" in out


def test_extract_reads_the_final_answer_of_a_response(capsys):
    response = "Half of 36 is 18, so the answer is $\\boxed{18}$."
    code, out, _ = _run(["--extract", response, "18.0"], capsys)
    assert code == 0
    with pytest.raises(ValueError, match="no final answer"):
        _run(["--extract", "no digits at all", "1"], capsys)


def test_dispatcher_runs_check_answer_and_maps_bad_arguments_to_exit_2(capsys):
    assert main(["check-answer", "x=2", "2"]) == 0
    assert main(["check-answer", "--timeout", "-1", "1", "1"]) == 2
    assert "timeout must be > 0 seconds" in capsys.readouterr().err


def test_answers_may_begin_with_a_minus_sign(capsys):
    assert _run([r"-\frac{7}{3}", "-7/3"], capsys)[0] == 0
    assert _run(["-x+1", "1-x"], capsys)[0] == 0
    assert _run(["--json", "-2", "-3"], capsys)[0] == 1
    assert main(["check-answer", r"-\sqrt{2}", r"-2^{1/2}"]) == 0


def test_policy_flags_reach_the_checker(capsys):
    assert _run(["(1, 2)", r"\{1, 2\}"], capsys)[0] == 1
    assert _run(["--tuple-matches-set", "(1, 2)", r"\{1, 2\}"], capsys)[0] == 0
    assert _run(["--decimal-comma", "never", "1,22", "1.22"], capsys)[0] == 1
    assert _run(["--inequality-vs-interval", "both", r"x \geq 5", r"[5, \infty)"], capsys)[0] == 0


@pytest.mark.parametrize(("argv", "code"), [(["50%", "0.5"], 0), ([r"\pm 2021", "2021"], 1), (["@", "1"], 2),
                                            ([r"-\frac{7}{3}", "-7/3"], 0)])
def test_console_command_exit_codes(argv, code):
    proc = subprocess.run([sys.executable, "-m", "workers.cli", "check-answer", *argv],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr
