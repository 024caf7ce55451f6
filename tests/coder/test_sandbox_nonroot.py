"""The sandbox as most users run it: not as root (no capabilities to drop; Landlock, seccomp and the
network namespace through unprivileged no_new_privs and a user namespace).

Runs the client in a subprocess as uid/gid 65534 (`setpriv`); needs root to switch user and an
interpreter, checkout and site-packages that user can read. Skips, saying why, where it cannot.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", "--"]

CLIENT = r'''
import json, os, tempfile
from coder.sandbox import Limits, run_tests, sandbox_info
lim = Limits(timeout_s=5, memory_mb=512)
outside = os.path.join(tempfile.gettempdir(), "proofcode-nonroot-escape")
attacks = {
    "write outside": f"def f():\n    open({outside!r}, 'w').write('x')\n    return True\n",
    "spawn": "import os\ndef f():\n    os.posix_spawn('/bin/true', ['true'], {})\n    return True\n",
    "socket": "import socket\ndef f():\n    socket.create_connection(('127.0.0.1', 22), timeout=1)\n    return True\n",
    "kill parent": "import os\ndef f():\n    os.kill(os.getppid(), 9)\n    return True\n",
}
tests = "def check(candidate):\n    assert candidate() is True\n"
out = {"uid": os.geteuid(), "info": sandbox_info(),
       "ok": run_tests("def f():\n    return True\n", tests, lim).status,
       "attacks": {k: run_tests(p, tests, lim).status for k, p in attacks.items()},
       "escaped": os.path.exists(outside)}
print(json.dumps(out))
'''


def _as_nobody(code: str) -> subprocess.CompletedProcess:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/tmp",
           "PYTHONPATH": os.pathsep.join([str(ROOT), *[p for p in sys.path if p.endswith("-packages")]])}
    return subprocess.run(NOBODY + [sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          timeout=120, cwd="/tmp")


def test_sandbox_protects_when_not_root():
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to run the client as an unprivileged user")
    # What the client itself does: import this checkout, then start the interpreter again (the fork server).
    probe = _as_nobody("import coder.sandbox, pydantic, subprocess, sys\n"
                       "subprocess.run([sys.executable, '-S', '-c', 'pass'], check=True)")
    if probe.returncode != 0:
        pytest.skip(f"uid 65534 cannot run {sys.executable} or import this checkout (a directory on the way "
                    f"is not readable to it): {probe.stderr.strip().splitlines()[-1:]}")
    done = _as_nobody(CLIENT)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["uid"] == 65534
    assert all(out["info"][k] for k in ("seccomp", "landlock", "no_network", "rlimits")), out["info"]
    assert out["ok"] == "passed"
    assert all(status != "passed" for status in out["attacks"].values()), out["attacks"]
    assert not out["escaped"]
