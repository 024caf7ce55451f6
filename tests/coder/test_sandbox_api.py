"""The sandbox API as the RL loop and Ray actors use it: many threads, a dying server, weaker mode."""
from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
from pathlib import Path
from concurrent.futures import ThreadPoolExecutor

import pytest

from coder.sandbox import Limits, Verdict, run_program, run_tests
from coder.sandbox import client
from coder.sandbox.plain import Unsupported, decode, encode

LIMITS = Limits(timeout_s=10)
TESTS = "def check(candidate):\n    assert candidate(3) == 9\n    assert candidate(-2) == 4\n"


def test_many_threads_share_a_few_servers():
    programs = [f"def sq(x):\n    return x * x{' + 0' * (i % 3)}\n" if i % 2 == 0 else "def sq(x):\n    return x + x\n"
                for i in range(24)]
    with ThreadPoolExecutor(12) as pool:
        verdicts = list(pool.map(lambda p: run_tests(p, TESTS, LIMITS, entry_point="sq"), programs))
    assert [v.status for v in verdicts] == ["passed" if i % 2 == 0 else "failed" for i in range(24)]
    alive = [s for s in client._servers if s.proc.poll() is None]
    assert 1 <= len(alive) <= client._MAX_SERVERS  # one per core at most, not one per thread


def test_servers_each_get_their_own_cores():
    cores = set(client._cores())
    if len(cores) < 2:
        pytest.skip("one core: one fork server, nothing to share")
    with ThreadPoolExecutor(8) as pool:  # concurrent callers: a second server starts
        list(pool.map(lambda i: run_tests("def sq(x):\n    return x * x\n", TESTS, LIMITS, entry_point="sq"),
                      range(16)))
    servers = [s for s in client._servers if s.proc.poll() is None]
    assert len(servers) >= 2
    shares = [os.sched_getaffinity(s.proc.pid) for s in servers]
    for server, share in zip(servers, shares):
        assert os.sched_getaffinity(server.zygote_pid) == share  # and so the runs it forks
    assert set().union(*shares) == cores and sum(map(len, shares)) == len(cores)  # disjoint, all used


def test_server_restarts_after_it_dies():
    before = client._get_server()
    for server in list(client._servers):  # all of them, so the next run must start a new one
        os.kill(server.proc.pid, signal.SIGKILL)
        server.proc.wait(timeout=10)
    v = run_tests("def sq(x):\n    return x * x\n", TESTS, LIMITS, entry_point="sq")
    assert v.status == "passed", v
    assert client._get_server().proc.pid != before.proc.pid
    leftovers = [p for p in Path("/dev/shm").glob(f"proofcode-sandbox-{before.proc.pid}-*")]
    assert leftovers == [], "the new server removes the dead server's run directories"


def test_verdict_statuses_and_details():
    v = run_tests("def sq(x):\n    return x *\n", TESTS, LIMITS, entry_point="sq")
    assert v.status == "runtime_error" and "SyntaxError" in v.detail
    v = run_tests("def sq(x):\n    raise KeyError('boom')\n", TESTS, LIMITS, entry_point="sq")
    assert v.status == "runtime_error" and v.detail.startswith("KeyError")
    v = run_tests("def other(x):\n    return x\n", TESTS, LIMITS, entry_point="sq")
    assert v.status == "runtime_error" and "'sq'" in v.detail
    v = run_tests("def sq(x):\n    return x * x\n", TESTS.replace("4\n", "5\n"), LIMITS, entry_point="sq")
    assert v.status == "failed" and "tests line 3" in v.detail and "candidate(-2) == 5" in v.detail
    assert isinstance(v, Verdict) and not v.passed


def test_in_place_mutation_is_replayed():
    program = "def sort_in_place(xs):\n    xs.sort()\n"
    tests = "def check(candidate):\n    a = [3, 1, 2]\n    candidate(a)\n    assert a == [1, 2, 3]\n"
    assert run_tests(program, tests, LIMITS, entry_point="sort_in_place").passed
    assert not run_tests("def sort_in_place(xs):\n    pass\n", tests, LIMITS, entry_point="sort_in_place").passed


def test_random_tests_are_deterministic_across_stages():
    program = "import random\ndef ident(s):\n    random.random()\n    return s\n"
    tests = ("import random\ndef check(candidate):\n    for _ in range(20):\n"
             "        s = ''.join(random.choice('abc') for _ in range(5))\n        assert candidate(s) == s\n")
    assert run_tests(program, tests, LIMITS, entry_point="ident").passed


def test_plain_encoding_roundtrip_and_rejections():
    value = {"a": [1, 2.5, (3, "x")], 4: {frozenset({1}), None}, "b": b"\x00", "c": 1j, "big": 10 ** 40,
             "inf": float("inf")}
    assert decode(encode(value)) == value
    assert type(decode(encode((1,)))) is tuple and type(decode(encode([1]))) is list

    class Sneaky(int):
        def __eq__(self, other):
            return True

        __hash__ = int.__hash__

    Sneaky.__module__ = "__candidate__"  # as if the program defined it
    standin = decode(encode(Sneaky(1)))  # its base value and name, never its methods
    assert standin == 1 and standin != 2 and type(standin).__name__ == "Sneaky" and type(standin) is not Sneaky
    try:
        decode(encode(object()))
    except Unsupported as exc:
        assert "non-plain" in str(exc)
    else:
        raise AssertionError("non-plain value decoded")


def test_weaker_sandbox_is_refused_unless_allowed(tmp_path):
    # A machine without libseccomp: a pyseccomp that fails to import, first on PYTHONPATH.
    fake = tmp_path / "fake"
    fake.mkdir()
    (fake / "pyseccomp.py").write_text("raise ImportError('libseccomp.so.2: cannot open shared object file')\n")
    env = dict(os.environ, PYTHONPATH=str(fake))
    samples = tmp_path / "samples.jsonl"
    samples.write_text('{"task_id": "HumanEval/0", "completion": "    return True\\n"}\n')

    def proofcode(*args):
        return subprocess.run([sys.executable, "-m", "workers.cli", *args], capture_output=True, text=True,
                              timeout=120, env=env)

    info = proofcode("sandbox-info")
    assert info.returncode == 1 and "MISSING  seccomp" in info.stdout, info.stdout
    refused = proofcode("grade", str(samples), "--no-progress")
    assert refused.returncode == 2 and "seccomp" in refused.stderr and "--allow-weaker-sandbox" in refused.stderr
    assert not (tmp_path / "samples.jsonl_results.jsonl").exists()  # refused before grading anything
    allowed = proofcode("grade", str(samples), "--no-progress", "--allow-weaker-sandbox", "--json")
    assert allowed.returncode == 0, allowed.stderr
    row = (tmp_path / "samples.jsonl_results.jsonl").read_text()
    assert '"seccomp"' not in row and '"landlock"' in row  # the result records what was active


def test_tests_that_expect_an_exception():
    tests = ("def check(candidate):\n    try:\n        candidate(-1)\n        assert False, 'should raise'\n"
             "    except ValueError:\n        pass\n    assert candidate(4) == 2\n")
    program = "def root(x):\n    if x < 0:\n        raise ValueError('negative')\n    return int(x ** 0.5)\n"
    assert run_tests(program, tests, LIMITS, entry_point="root").passed
    lenient = "def root(x):\n    return int(abs(x) ** 0.5)\n"
    v = run_tests(lenient, tests, LIMITS, entry_point="root")
    assert v.status == "failed" and "should raise" in v.detail
    wrong_type = "def root(x):\n    if x < 0:\n        raise TypeError('nope')\n    return 2\n"
    v = run_tests(wrong_type, tests, LIMITS, entry_point="root")
    assert v.status == "runtime_error" and v.detail == "TypeError: nope"


def test_site_builtins_exist_in_runs():
    # The fork server runs with -S; programs still get exit/quit (used by stdin/stdout solutions).
    v = run_program("print('a')\nexit(0)\nprint('b')", limits=LIMITS, expected_output="a")
    assert v.status == "passed", v
    v = run_program("quit(3)", limits=LIMITS)
    assert v.status == "runtime_error" and "exit status 3" in v.detail, v
    assert run_tests("def f():\n    return callable(help) and callable(exit)\n", "assert f() is True\n", LIMITS).passed


def test_programs_the_parser_cannot_handle_are_verdicts_not_crashes():
    # ast.parse raises MemoryError / RecursionError (not SyntaxError) on these; the caller must get a verdict.
    for body in ("not " * 100_000 + "x", "x" + "+x" * 200_000):
        program = f"def sq(x):\n    return {body}\n"
        v = run_tests(program, TESTS, LIMITS, entry_point="sq")
        assert v.status == "runtime_error" and "nested too deeply" in v.detail, v
        assert run_program(program, limits=LIMITS).status == "runtime_error"


def test_code_compiled_by_the_caller_keeps_names_and_errors():
    # The caller compiles and marshals the code; the child must see the same file names and still
    # report errors that only compiling (not parsing) finds.
    where = "def sq(x):\n    import sys\n    return x * x if sys._getframe().f_code.co_filename == '<candidate>' else 0\n"
    assert run_tests(where, TESTS, LIMITS, entry_point="sq").status == "passed"
    v = run_program("import sys\nprint(sys._getframe().f_code.co_filename)", limits=LIMITS, expected_output="<program>")
    assert v.status == "passed", v
    v = run_tests("def sq(x):\n    return x * x\nreturn 1\n", TESTS, LIMITS, entry_point="sq")
    assert v.status == "runtime_error" and "'return' outside function" in v.detail, v
    v = run_tests("def sq(x):\n    return x *\n", TESTS, LIMITS, entry_point="sq")
    assert v.status == "runtime_error" and "SyntaxError: invalid syntax (<candidate>, line 2)" in v.detail, v
    failing = run_tests("def sq(x):\n    return x\n", TESTS, LIMITS, entry_point="sq")
    assert failing.status == "failed" and "tests line 2" in failing.detail, failing  # tests' own file name


def _client_with_open_files(soft: int, hard: int) -> subprocess.CompletedProcess:
    code = ("from coder.sandbox import run_tests\n"
            "print(run_tests('def sq(x):\\n    return x * x\\n', 'assert sq(3) == 9').status)\n")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard)))


def test_fork_server_raises_a_low_open_files_limit_or_says_what_to_do():
    # Its prepared descriptors live above 1000: a soft limit of 64 is raised (the hard one allows it)...
    assert _client_with_open_files(64, 4096).stdout.strip() == "passed"
    # ...and when the hard limit does not allow it, start-up fails with what to change, not EINVAL.
    low = _client_with_open_files(64, 64)
    assert low.returncode != 0
    assert "SandboxUnavailable" in low.stderr and "ulimit -n" in low.stderr, low.stderr[-500:]
