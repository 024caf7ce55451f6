"""`proofcode` start-up: a command imports only its own module; `grade` starts its fork servers early."""
from __future__ import annotations

import argparse
import importlib
import json
import subprocess
import sys
from pathlib import Path

from workers.cli import COMMANDS

ROOT = Path(__file__).resolve().parents[2]


def test_the_command_map_names_what_each_module_registers():
    for module, names in COMMANDS.items():
        sub = argparse.ArgumentParser().add_subparsers()
        importlib.import_module(module).register(sub)
        assert tuple(sub.choices) == names, module


def test_grade_imports_no_other_command_and_adopts_its_prestarted_servers(tmp_path):
    samples = tmp_path / "s.jsonl"
    samples.write_text(json.dumps({"task_id": "HumanEval/0", "completion": "    return False\n"}) + "\n")
    code = f"""
import sys
from workers.cli import main
from coder.sandbox import client, startup
spawned = []
real = startup.spawn_group
startup.spawn_group = lambda n: spawned.extend(real(n)) or spawned[-n:]
assert main(["grade", {str(samples)!r}, "--workers", "2", "--k", "1", "--no-progress"]) == 0
heavy = [m for m in ("torch", "ray", "fastapi", "coder.math", "prover", "core_model") if m in sys.modules]
print(heavy, len(spawned), all(s.proc.pid in [p.pid for p, _ in spawned] for s in client._servers))
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    cores = len(__import__("coder.sandbox.startup", fromlist=["x"]).cores())
    assert out.stdout.splitlines()[-1] == f"[] {min(2, cores, 4)} True"  # no server started late


def test_a_prestarted_server_whose_client_exits_says_nothing():
    code = "from coder.sandbox import startup; startup.prestart(1)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stderr == ""
