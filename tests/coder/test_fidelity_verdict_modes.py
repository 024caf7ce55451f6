"""Verdict modes: strict (only the trusted replay decides) and compatible (answers the replay cannot rebuild
are judged by the run itself, verified="in_sandbox"), and cheats aimed at that fallback.

Every attack returns an answer the replay cannot rebuild (so the fallback is in play) and would pass if the
fallback trusted the run's word: each must fail in compatible mode.
"""
from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from coder.sandbox import Limits, run_tests

LIMITS = Limits(timeout_s=10)
ARRAY_TESTS = "import array\ndef check(candidate):\n    assert candidate(3) == array.array('i', [0, 1, 2])\n"
HONEST = "import array\ndef arr(n):\n    return array.array('i', range(n))\n"
WRONG = "import array\ndef arr(n):\n    return array.array('i', range(1, n + 1))\n"


def _grade(program, tests=ARRAY_TESTS, verdicts="compatible", entry_point="arr"):
    return run_tests(program, tests, LIMITS, entry_point=entry_point, verdicts=verdicts)


def test_unreplayable_answer_strict_fails_compatible_decides_in_sandbox():
    with ThreadPoolExecutor(4) as pool:
        strict, compatible, wrong, wrong_strict = pool.map(
            lambda a: _grade(*a), [(HONEST, ARRAY_TESTS, "strict"), (HONEST,), (WRONG,), (WRONG, ARRAY_TESTS, "strict")])
    assert strict.status == "failed" and "--verdicts compatible" in strict.detail and strict.verified == "replay"
    assert compatible.passed and compatible.verified == "in_sandbox", compatible
    assert not wrong.passed and not wrong_strict.passed, (wrong, wrong_strict)


def test_replayable_answers_are_decided_by_the_replay_in_both_modes():
    for mode in ("strict", "compatible"):
        v = run_tests("def sq(x):\n    return x * x\n", "assert sq(3) == 9\n", LIMITS, verdicts=mode)
        assert v.passed and v.verified == "replay", v


def test_unknown_mode_is_a_clear_error():
    with pytest.raises(ValueError, match="strict, compatible"):
        run_tests("def f():\n    return 1\n", "assert f() == 1\n", verdicts="lenient")


STEAL = """
import array, os, sys
def claim(d):
    for v in list(d.values()):
        for token in ([v.get("token")] if isinstance(v, dict) else [v]):
            if isinstance(token, str) and len(token) == 32:
                os.write(3, ('{"status": "done", "sandbox": "%s"}\\n' % token).encode())
"""

ATTACKS = {
    # An always-equal object of the program's own class next to an honest unreplayable value.
    "always_equal_own_class": """
import array
class Yes:
    def __eq__(self, other):
        return True
def arr(n):
    return Yes()
""",
    "always_equal_int_subclass": """
class E(int):
    __eq__ = int.__ge__
def arr(n):
    return E(10 ** 9)
""",
    # Find the job's token in the harness (its frames, its objects), claim a pass with it, answer wrongly.
    "stack_walk": STEAL + """
def arr(n):
    f = sys._getframe()
    while f is not None:
        claim(f.f_locals)
        f = f.f_back
    return array.array('i', [9])
""",
    "traceback_frames": STEAL + """
def arr(n):
    try:
        raise ValueError
    except ValueError as e:
        f = e.__traceback__.tb_frame
        while f is not None:
            claim(f.f_locals)
            f = f.f_back
    return array.array('i', [9])
""",
    "generator_frames": STEAL + """
def arr(n):
    def g():
        yield
    f = g().gi_frame.f_back
    while f is not None:
        claim(f.f_locals)
        f = f.f_back
    return array.array('i', [9])
""",
    "settrace_frames": STEAL + """
def tracer(frame, event, arg):
    claim(frame.f_locals)
    return tracer
def arr(n):
    sys.settrace(tracer)
    sys._getframe(0).f_back.f_trace = tracer
    return array.array('i', [9])
""",
    "gc_find_token": STEAL + """
import gc
def arr(n):
    for obj in gc.get_objects():
        if isinstance(obj, dict):
            claim(obj)
    return array.array('i', [9])
""",
    "forged_token_line": """
import array, os
def arr(n):
    os.write(3, b'{"status": "done", "sandbox": "00000000000000000000000000000000"}\\n')
    os._exit(0)
""",
    "read_own_recording_for_token": """
import array, os, threading, time
def steal():
    time.sleep(0.3)
    data = os.pread(3, 1 << 20, 0)
    os.write(3, data.replace(b'"arr"', b'"arr"'))
def arr(n):
    threading.Thread(target=steal).start()
    return array.array('i', [9])
""",
    "exit_early": """
import array, os
def arr(n):
    os._exit(0)
""",
    "patch_builtins_used_by_tests": """
import array, builtins
builtins.len = lambda x: 3
def arr(n):
    return array.array('i', [9])
""",
    "ctypes_poke": """
import array
import ctypes
def arr(n):
    ctypes.memmove(0, 0, 0)
    return array.array('i', [0, 1, 2])[:0]
""",
}
ATTACK_TESTS = ("import array\ndef check(candidate):\n    r = candidate(3)\n    assert len(r) == 3\n"
                "    assert r == array.array('i', [0, 1, 2])\n")


# The program patches the library code the tests compare with (the run's own outcome would then lie):
# persistently, undoing the patch from the patched method itself, or later from a thread or a gc callback.
# A categorical column: the replay does not rebuild it, so the in-sandbox fallback is in play (plain
# numeric, str and object-of-plain-data frames are rebuilt by the replay itself, test_fidelity_frames).
DF_TESTS = ("import pandas as pd\ndef check(candidate):\n"
            "    exp = pd.DataFrame({'x': range(4), 'y': pd.Categorical([0, 1, 4, 9])})\n"
            "    got = candidate(4)\n    assert isinstance(got, pd.DataFrame)\n    assert got.equals(exp)\n"
            "    pd.testing.assert_frame_equal(candidate(2), pd.DataFrame({'x': range(2), 'y': pd.Categorical([0, 1])}))\n")
DF_HONEST = ("import pandas as pd\ndef frame(n):\n"
             "    return pd.DataFrame({'x': range(n), 'y': pd.Categorical([i * i for i in range(n)])})\n")
LIBRARY_PATCHES = {
    "persistent": "    pd.DataFrame.equals = lambda a, b: True\n    pd.testing.assert_frame_equal = lambda *a, **k: None\n",
    "self_restoring": ("    orig, orig_af = pd.DataFrame.equals, pd.testing.assert_frame_equal\n"
                       "    def eq(a, b):\n        pd.DataFrame.equals = orig\n        return True\n"
                       "    def af(*a, **k):\n        pd.testing.assert_frame_equal = orig_af\n"
                       "    pd.DataFrame.equals, pd.testing.assert_frame_equal = eq, af\n"),
    "from_a_thread": ("    import threading, time\n    def later():\n        time.sleep(0.05)\n"
                      "        pd.DataFrame.equals = lambda a, b: True\n        pd.testing.assert_frame_equal = lambda *a, **k: None\n"
                      "    threading.Thread(target=later).start()\n"),
    "from_a_gc_callback": ("    import gc\n    def later(phase, info):\n        pd.DataFrame.equals = lambda a, b: True\n"
                           "        pd.testing.assert_frame_equal = lambda *a, **k: None\n    gc.callbacks.append(later)\n"),
    "subclass_in_the_module": ("    class F(pd.DataFrame):\n        def equals(self, o):\n            return True\n"
                               "    pd.DataFrame = F\n    pd.testing.assert_frame_equal = lambda *a, **k: None\n    return F({'y': pd.Categorical([5])})\n"),
}


def test_library_patches_fail_and_the_honest_dataframe_passes():
    pytest.importorskip("pandas")
    programs = [DF_HONEST] + ["import pandas as pd\ndef frame(n):\n" + body + "    return pd.DataFrame({'y': pd.Categorical([5])})\n"
                              for body in LIBRARY_PATCHES.values()]
    with ThreadPoolExecutor(4) as pool:
        honest, *cheats = pool.map(lambda p: _grade(p, DF_TESTS, entry_point="frame"), programs)
    assert honest.passed and honest.verified == "in_sandbox", honest
    for name, v in zip(LIBRARY_PATCHES, cheats):
        assert not v.passed, (name, v)


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_fallback_cheats_fail(name):
    v = _grade(ATTACKS[name], ATTACK_TESTS)
    assert not v.passed, v
    assert v.verified != "in_sandbox" or not v.passed


def test_in_sandbox_run_cannot_reach_frames_gc_or_ctypes():
    probe = """
import array, sys, gc
def arr(n):
    blocked = []
    for op in (lambda: sys._getframe(), lambda: gc.get_objects(), lambda: sys.settrace(None),
               lambda: __import__("ctypes"), lambda: sys.modules["ctypes"]):
        try:
            op()
        except (ValueError, PermissionError, KeyError, ImportError):
            blocked.append(1)
    return array.array('i', [0, 1, 2]) if len(blocked) == 5 else array.array('i')
"""
    assert _grade(probe, ATTACK_TESTS).passed  # compatible: all five closed
    # ...and only in compatible runs: strict runs never trust the run, so nothing is taken away.
    free = probe.replace("return array.array('i', [0, 1, 2]) if len(blocked) == 5 else array.array('i')",
                         "return len(blocked)")
    assert run_tests(free, "assert arr(0) == 0\n", LIMITS, verdicts="strict").passed


def test_grade_cli_rows_say_how_each_verdict_was_decided(tmp_path):
    problems = tmp_path / "problems.jsonl"
    rows = [{"task_id": "t/0", "prompt": "import array\n\ndef arr(n):\n    \"\"\"array('i', range(n)).\"\"\"\n",
             "entry_point": "arr", "test": ARRAY_TESTS},
            {"task_id": "t/1", "prompt": "def sq(x):\n", "entry_point": "sq",
             "test": "def check(candidate):\n    assert candidate(3) == 9\n"}]
    problems.write_text("".join(json.dumps(r) + "\n" for r in rows))
    samples = tmp_path / "samples.jsonl"
    samples.write_text(json.dumps({"task_id": "t/0", "completion": "    return array.array('i', range(n))\n"}) + "\n"
                       + json.dumps({"task_id": "t/1", "completion": "    return x * x\n"}) + "\n")
    results = tmp_path / "samples.jsonl_results.jsonl"
    for mode, expected in (("compatible", ["in_sandbox", "replay"]), ("strict", ["replay", "replay"])):
        results.unlink(missing_ok=True)
        run = subprocess.run([sys.executable, "-m", "workers.cli", "grade", str(samples), "--problems", str(problems),
                              "--k", "1", "--no-progress", "--json", "--verdicts", mode],
                             capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stderr
        got = [json.loads(line) for line in results.read_text().splitlines()]
        assert [r["verified"] for r in got] == expected, got
        assert [r["passed"] for r in got] == ([True, True] if mode == "compatible" else [False, True])


def test_rl_reward_uses_strict_verdicts():
    import inspect

    from coder.grading import grade_sample
    from workers.rl import rewards

    assert inspect.signature(run_tests).parameters["verdicts"].default == "strict"
    assert "verdicts=" not in inspect.getsource(rewards)  # so rewards get run_tests' strict default
    assert inspect.signature(grade_sample).parameters["verdicts"].default == "compatible"
