"""Fork servers started early (`proofcode grade`): one interpreter for all, none handed out before it is ready."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from coder.sandbox import Limits, run_tests

ROOT = Path(__file__).resolve().parents[2]


def _run(code: str) -> list[str]:
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


def test_prestarted_servers_come_from_one_interpreter_and_are_handed_out_once_ready():
    # One process is started; it forks the second server once its modules are imported, so the second
    # is not its caller's child (watched through a pidfd). `take(ready_only=True)` hands out none that
    # has not said hello, and `starting` says one is still to be taken.
    code = """
import os, signal, subprocess
from coder.sandbox import startup
from coder.sandbox.client import _ForkServerClient
startup.prestart(2)
print("ready-at-once", startup.take(ready_only=True) is not None, "starting", startup.starting())
servers = [_ForkServerClient(startup.take()) for _ in range(2)]
print("taken", startup.take() is None, "starting", startup.starting())
first, second = servers
print("forked", type(second.proc).__name__, second.proc.pid != first.proc.pid, second.proc.poll())
print("sessions", os.getsid(first.proc.pid) == first.proc.pid, os.getsid(second.proc.pid) == second.proc.pid)
second.proc.kill()
second.proc.wait(timeout=10)
print("killed", second.proc.poll(), first.proc.poll())
"""
    words = _run(code)
    assert words[words.index("ready-at-once") + 1:words.index("ready-at-once") + 4] == ["False", "starting", "True"]
    assert words[words.index("taken") + 1:words.index("taken") + 4] == ["True", "starting", "False"]
    assert words[words.index("forked") + 1:words.index("forked") + 4] == ["Forked", "True", "None"]
    assert words[words.index("sessions") + 1:words.index("sessions") + 3] == ["True", "True"]
    assert words[words.index("killed") + 1:] == ["0", "None"]


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


def test_pyseccomp_loads_without_ctypes_util_and_falls_back_to_it():
    # The fork server imports pyseccomp through a stub of ctypes.util (the real one brings subprocess and
    # tempfile into every zygote); a soname that does not load falls back to the real find_library, and a
    # ctypes.util already imported is left as it was.
    code = """
import sys
from coder.sandbox import protect
print("stub", protect.seccomp_available(), "ctypes.util" in sys.modules)
"""
    assert _run(code) == ["stub", "True", "False"]
    code = """
import sys
from coder.sandbox import protect
protect._SONAMES["seccomp"] = "libproofcode-missing.so.9"
print("fallback", protect.seccomp_available(), sys.modules["ctypes.util"].__name__, hasattr(sys.modules["ctypes.util"], "__file__"))
"""
    assert _run(code) == ["fallback", "True", "ctypes.util", "True"]
    code = """
import ctypes.util
original = ctypes.util.find_library
from coder.sandbox import protect
print("preloaded", protect.seccomp_available(), ctypes.util.find_library is original)
"""
    assert _run(code) == ["preloaded", "True", "True"]


def test_the_grader_keeps_off_the_starting_servers_core_until_it_takes_one():
    # `prestart` starts the servers on the last core and keeps the caller's threads (and those it starts)
    # off it; taking a server gives every such thread all the cores back.
    code = """
import os, threading
from coder.sandbox import startup
from coder.sandbox.client import _get_server
mine = startup.cores()
startup.prestart(2)
during = os.sched_getaffinity(0)
started, done = threading.Event(), threading.Event()
def keep():
    started.set(); done.wait()
t = threading.Thread(target=keep); t.start(); started.wait()
tid = t.native_id
in_thread = os.sched_getaffinity(tid)
_get_server()
after, thread_after = os.sched_getaffinity(0), os.sched_getaffinity(tid)
done.set(); t.join()
print(len(mine) > 1, during == set(mine[:-1]), in_thread == set(mine[:-1]), after == set(mine), thread_after == set(mine))
"""
    got = _run(code)
    if got[0] == "False":
        pytest.skip("one core: nothing to keep off")
    assert got == ["True"] * 5
