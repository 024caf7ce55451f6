"""Fork servers started early (`proofcode grade`): one at a time, and none handed out before it is ready."""
from __future__ import annotations

import select
import subprocess
import sys
from pathlib import Path

from coder.sandbox import Limits, run_tests

ROOT = Path(__file__).resolve().parents[2]


def _run(code: str) -> list[str]:
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


def test_prestarted_servers_start_one_after_another_and_wait_to_be_ready():
    # The second server is spawned only once the first said hello (it starts on a core of its own);
    # `take(ready_only=True)` hands out none that has not said hello, and `starting` says one is coming.
    code = """
import select, time
from coder.sandbox import startup
spawned = []
real = startup.spawn
def spawn():
    if spawned:
        print("first-ready-at-second-spawn", bool(select.select([spawned[0][1]], [], [], 0)[0]))
    spawned.append(real())
    return spawned[-1]
startup.spawn = spawn
startup.prestart(2)
print("ready-take-at-once", startup.take(ready_only=True) is not None, "starting", startup.starting())
deadline = time.monotonic() + 60
while len(spawned) < 2 and time.monotonic() < deadline:
    time.sleep(0.01)
for _, sock in spawned:
    select.select([sock], [], [], 60)
taken = [startup.take(ready_only=True) for _ in range(3)]
print("taken", sum(t is not None for t in taken), "starting", startup.starting())
"""
    words = _run(code)
    assert words[words.index("first-ready-at-second-spawn") + 1] == "True"
    assert words[words.index("ready-take-at-once") + 1] == "False"  # the first cannot be ready yet
    assert words[words.index("ready-take-at-once") + 3] == "True"
    assert words[words.index("taken") + 1:] == ["2", "starting", "False"]


def test_a_forked_child_does_not_take_its_parents_prestarted_servers():
    code = """
import os
from coder.sandbox import startup
startup.prestart(2)
pid = os.fork()
if pid == 0:
    print("child", startup.take() is None, startup.starting())
    os._exit(0)
os.waitpid(pid, 0)
print("parent", startup.take() is not None)
"""
    words = _run(code)
    assert words[words.index("child") + 1:words.index("child") + 3] == ["True", "False"]
    assert words[words.index("parent") + 1] == "True"


def test_runs_collect_garbage_as_plain_python_does():
    # The server imports with collection off (start-up time); the runs it forks must collect as usual.
    program = "import gc\ndef collecting():\n    return gc.isenabled()\n"
    verdict = run_tests(program, "assert collecting() is True\n", Limits(timeout_s=10))
    assert verdict.status == "passed", verdict
    cycle = ("import gc\ndef freed():\n    class Node:\n        pass\n    a, b = Node(), Node()\n"
             "    a.other, b.other = b, a\n    del a, b\n    return gc.collect() >= 2\n")
    verdict = run_tests(cycle, "assert freed() is True\n", Limits(timeout_s=10))
    assert verdict.status == "passed", verdict
