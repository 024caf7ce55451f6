"""`proofcode grade` and `proofcode sandbox-info` as a user runs them (real subprocesses)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from coder.problems import load_problems


def proofcode(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "workers.cli", *args], capture_output=True, text=True, timeout=180)


def test_sandbox_info():
    out = proofcode("sandbox-info", "--json")
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    assert info["seccomp"] and info["landlock"] and info["no_network"]
    text = proofcode("sandbox-info")
    assert "active" in text.stdout and "landlock" in text.stdout


def test_grade_json_and_text(tmp_path):
    problems = load_problems("humaneval")
    samples = tmp_path / "samples.jsonl"
    rows = []
    for task_id in list(problems)[:4]:
        rows.append({"task_id": task_id, "completion": problems[task_id].canonical_solution})
        rows.append({"task_id": task_id, "completion": "    raise ValueError('no')\n"})
    samples.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = proofcode("grade", str(samples), "--benchmark", "humaneval", "--k", "1,2", "--workers", "2", "--json")
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["pass@1"] == 0.5 and summary["pass@2"] == 1.0
    assert summary["verdicts"] == {"passed": 4, "runtime_error": 4}
    results = (tmp_path / "samples.jsonl_results.jsonl").read_text().splitlines()
    assert len(results) == 8 and "ValueError: no" in json.loads(results[1])["detail"]
    again = proofcode("grade", str(samples), "--k", "1", "--no-progress")  # resumes: nothing left to run
    assert again.returncode == 0 and "pass@1: 0.5000" in again.stdout


def test_grade_errors_are_one_line(tmp_path):
    samples = tmp_path / "samples.jsonl"
    samples.write_text('{"task_id": "HumanEval/0", "completion": ""}\n{"task_id": 3}\n')
    out = proofcode("grade", str(samples))
    assert out.returncode == 2
    assert "proofcode grade: error:" in out.stderr and "samples.jsonl:2" in out.stderr
    assert "Traceback" not in out.stderr
    bad_k = proofcode("grade", str(samples), "--k", "0")
    assert bad_k.returncode == 2 and "--k" in bad_k.stderr


def test_interrupted_grading_resumes(tmp_path):
    import signal
    import time

    samples = tmp_path / "slow.jsonl"
    slow = "    import time\n    time.sleep(0.2)\n    return False\n"
    samples.write_text("".join(json.dumps({"task_id": "HumanEval/0", "completion": slow}) + "\n" for _ in range(30)))
    results = tmp_path / "slow.jsonl_results.jsonl"
    # SIGINT reaches Python only if not inherited as ignored; restore the default handler explicitly.
    code = ("import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
            "from workers.cli import main; sys.exit(main(sys.argv[1:], quick_exit=True))")  # as `proofcode` runs it
    proc = subprocess.Popen([sys.executable, "-c", code, "grade", str(samples), "--workers", "2", "--no-progress"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while proc.poll() is None and (not results.exists() or not results.read_text().count("\n")):
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    kept = results.read_text().count("\n")
    assert 1 <= kept < 30
    again = proofcode("grade", str(samples), "--json", "--no-progress", "--k", "1")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["verdicts"] == {"failed": 30}
    assert len(results.read_text().splitlines()) == 30


def test_grade_ends_cleanly_when_its_output_is_closed(tmp_path):
    """`proofcode grade` ends without the interpreter's teardown: its summary still reaches a reader, a closed
    pipe (`| head -1`) ends it quietly (0, or the shell's 141 when it was still writing), and every result is
    on disk. Unbuffered output (PYTHONUNBUFFERED) writes while the reader is leaving: both are run."""
    problems = load_problems("humaneval")
    samples = tmp_path / "s.jsonl"
    samples.write_text("".join(json.dumps({"task_id": t, "completion": problems[t].canonical_solution}) + "\n"
                               for t in list(problems)[:3]))
    for unbuffered in ("", "1"):
        (tmp_path / "s.jsonl_results.jsonl").unlink(missing_ok=True)
        env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
        proc = subprocess.Popen([sys.executable, "-m", "workers.cli", "grade", str(samples), "--k", "1", "--no-progress"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**env, "PYTHONUNBUFFERED": unbuffered})
        first = proc.stdout.readline()
        proc.stdout.close()
        err = proc.stderr.read().decode()
        assert proc.wait(timeout=120) in (0, 141) and first.startswith(b"pass@1: 1.0000"), err
        assert err == "" and len((tmp_path / "s.jsonl_results.jsonl").read_text().splitlines()) == 3
