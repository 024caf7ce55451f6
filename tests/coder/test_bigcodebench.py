"""BigCodeBench-style problems graded natively: unittest.TestCase tests, `task_func`, stdlib and library values.

Each task has a correct and a subtly wrong solution; proofcode's verdict must equal a plain
`python -m unittest`-style run of solution + tests.
"""
from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from coder.grading import grade_sample
from coder.problems import load_problems
from coder.sandbox import Limits, run_tests

LIMITS = Limits(timeout_s=20)

TASKS = [
    ("BigCodeBench/counter", "from collections import Counter\n\ndef task_func(text):\n",
     "    return Counter(text.split())\n", "    return Counter(text)\n",
     "import unittest\nfrom collections import Counter\nclass TestCases(unittest.TestCase):\n"
     "    def test_counts(self):\n        self.assertEqual(task_func('a b a'), Counter({'a': 2, 'b': 1}))\n"
     "    def test_type(self):\n        self.assertIsInstance(task_func(''), Counter)\n"),
    ("BigCodeBench/dates", "import datetime\n\ndef task_func(start, days):\n",
     "    return [start + datetime.timedelta(days=i) for i in range(days)]\n",
     "    return [start + datetime.timedelta(days=i) for i in range(1, days + 1)]\n",
     "import unittest, datetime\nclass TestCases(unittest.TestCase):\n    def setUp(self):\n        self.d = datetime.date(2024, 2, 28)\n"
     "    def test_span(self):\n        out = task_func(self.d, 3)\n        self.assertEqual(out[-1], datetime.date(2024, 3, 1))\n"
     "        self.assertEqual(len(out), 3)\n"),
    ("BigCodeBench/test_class", "def task_func(items):\n",
     "    return sorted(items, key=lambda it: it.price)\n", "    return sorted(items, key=lambda it: -it.price)\n",
     "import unittest\nclass Item:\n    def __init__(self, name, price):\n        self.name, self.price = name, price\n"
     "class TestCases(unittest.TestCase):\n    def test_order(self):\n        a, b = Item('a', 2), Item('b', 1)\n"
     "        out = task_func([a, b])\n        self.assertIs(out[0], b)\n        self.assertEqual([i.name for i in out], ['b', 'a'])\n"),
    ("BigCodeBench/raises", "def task_func(n):\n",
     "    if n < 0:\n        raise ValueError('n must be >= 0')\n    return list(range(n))\n", "    return list(range(max(n, 0)))\n",
     "import unittest\nclass TestCases(unittest.TestCase):\n    def test_negative(self):\n        with self.assertRaises(ValueError):\n"
     "            task_func(-1)\n    def test_ok(self):\n        self.assertEqual(task_func(2), [0, 1])\n"),
    ("BigCodeBench/array", "import array\n\ndef task_func(n):\n",
     "    return array.array('d', [i / 2 for i in range(n)])\n", "    return array.array('d', [i / 3 for i in range(n)])\n",
     "import unittest, array\nclass TestCases(unittest.TestCase):\n    def test_values(self):\n"
     "        self.assertEqual(task_func(3), array.array('d', [0.0, 0.5, 1.0]))\n"),
]


def _rows():
    return [{"task_id": t, "complete_prompt": p, "code_prompt": p, "canonical_solution": ok, "test": test,
             "entry_point": "task_func", "libs": "[]"} for t, p, ok, _, test in TASKS]


def _plain(program: str, tests: str) -> bool:
    source = f"{program}\n{tests}\nimport unittest, sys\nr = unittest.main(exit=False, argv=['x']).result\n" \
             "sys.exit(0 if r.wasSuccessful() else 1)\n"
    return subprocess.run([sys.executable, "-c", source], capture_output=True, timeout=60).returncode == 0


@pytest.fixture(scope="module")
def problems(tmp_path_factory):
    path = tmp_path_factory.mktemp("bcb") / "bigcodebench.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in _rows()))
    return load_problems(path)


def test_fields_are_read(problems):
    p = problems["BigCodeBench/counter"]
    assert p.entry_point == "task_func" and p.prompt.startswith("from collections") and "TestCase" in p.test


@pytest.mark.parametrize("mode", ["compatible", "strict"])
def test_verdicts_match_plain_unittest_run(problems, mode):
    jobs = [(t, label, p + c, test) for t, p, ok, bad, test in TASKS for label, c in (("correct", ok), ("wrong", bad))]
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda j: (j, grade_sample(problems[j[0]], j[2], LIMITS, is_solution=True, verdicts=mode),
                                       _plain(j[2], j[3])), jobs))
    for (task, label, _, _), verdict, reference in got:
        assert reference is (label == "correct"), f"{task} {label}: fixture wrong"
        if mode == "strict" and task == "BigCodeBench/array" and label == "correct":
            assert not verdict.passed and "--verdicts compatible" in verdict.detail  # the replay cannot rebuild it
            continue
        assert verdict.passed is reference, f"{task} {label} ({mode}): {verdict.status} {verdict.detail}"
        if verdict.passed:
            assert verdict.verified == ("in_sandbox" if task == "BigCodeBench/array" else "replay")


def test_failure_detail_names_the_test_method(problems):
    v = grade_sample(problems["BigCodeBench/raises"], "def task_func(n):\n    return list(range(max(n, 0)))\n", LIMITS,
                     is_solution=True)
    assert v.status == "failed" and "test_negative" in v.detail and "ValueError not raised" in v.detail, v


def test_dataframe_answers(problems):
    program = "import pandas as pd\n\ndef task_func(n):\n    return pd.DataFrame({'x': list(range(n))})\n"
    tests = ("import unittest\nimport pandas as pd\nclass TestCases(unittest.TestCase):\n    def test_frame(self):\n"
             "        df = task_func(3)\n        self.assertEqual(list(df['x']), [0, 1, 2])\n"
             "        pd.testing.assert_frame_equal(df, pd.DataFrame({'x': [0, 1, 2]}))\n")
    probe = run_tests("import pandas\ndef f():\n    return 1\n", "assert f() == 1\n", LIMITS)
    if not probe.passed:
        pytest.skip(f"pandas does not import inside the sandbox on this branch: {probe.detail[:120]}")
    assert run_tests(program, tests, LIMITS, entry_point="task_func", verdicts="compatible").passed
    wrong = program.replace("range(n)", "range(1, n + 1)")
    assert not run_tests(wrong, tests, LIMITS, entry_point="task_func", verdicts="compatible").passed
