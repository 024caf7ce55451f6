"""The `proofcode` entry point: installed, lists its commands, turns errors into one clear line."""
import subprocess
import sys


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "workers.cli", *args], capture_output=True, text=True, timeout=120)


def test_help_lists_usage():
    out = run_cli("--help")
    assert out.returncode == 0
    assert "usage: proofcode" in out.stdout


def test_unknown_command_is_a_usage_error():
    out = run_cli("no-such-command")
    assert out.returncode == 2
    assert "invalid choice" in out.stderr
