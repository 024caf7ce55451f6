"""`lean_file_check` (DojoEnv.check) against a stand-in `lake` that answers like `lake env lean --json`."""
from __future__ import annotations

import stat
import sys

import pytest

from prover import Theorem
from prover.dojo import lean_file_check
from prover.verification import final_check

# Prints one JSON message per line, as `lean --json FILE` does; severity "information" as Lean 4 writes it.
FAKE_LAKE = r'''
import json, re, sys, time
path = sys.argv[-1]
text = open(path).read()
if "HANG" in text:
    time.sleep(60)
decls = {}
for no, line in enumerate(text.split("\n"), 1):
    m = re.match(r"theorem (\w+)", line)
    if m:
        uses_sorry = "sorry" in line
        used = re.search(r"exact (\w+)", line)
        decls[m.group(1)] = ["sorryAx"] if uses_sorry else decls.get(used.group(1), []) if used else ["propext"]
        if uses_sorry:
            print(json.dumps({"severity": "warning", "pos": {"line": no, "column": 8}, "endPos": None,
                              "data": "declaration uses `sorry`", "fileName": path, "caption": ""}))
    m = re.match(r"#print axioms (\w+)", line)
    if m:
        axioms = ", ".join(decls.get(m.group(1), []))
        print(json.dumps({"severity": "information", "pos": {"line": no, "column": 0},
                          "endPos": {"line": no, "column": 13}, "fileName": path, "caption": "",
                          "data": f"'{m.group(1)}' depends on axioms: [{axioms}]"}))
sys.exit(1 if any("sorry" in l for l in text.split("\n")) else 0)
'''


@pytest.fixture
def project(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    lake = bin_dir / "lake"
    lake.write_text(f"#!{sys.executable}\n{FAKE_LAKE}")
    lake.chmod(lake.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    proj = tmp_path / "traced"
    proj.mkdir()
    return proj


def test_messages_and_axioms_are_separated(project):
    out = lean_file_check(project, "theorem t : True := by sorry", "import Mathlib", timeout=30, print_axioms=["t"])
    assert [m.text for m in out.messages] == ["declaration uses `sorry`"]
    assert out.sorries and out.axioms == {"t": ["sorryAx"]}
    assert not list(project.iterdir())  # the temporary file is removed


def test_final_check_through_a_file_check_env(project):
    class FileEnv:  # the ProofEnv.check contract, as DojoEnv implements it
        def check(self, source, header="", timeout=None, print_axioms=()):
            return lean_file_check(project, source, header, timeout or 30, print_axioms)

    thm = Theorem("t", "import Mathlib", "theorem t : True :=")
    ok = final_check(thm, "by trivial", FileEnv())
    assert ok.accepted and ok.axioms == ["propext"]
    hidden = Theorem("t", "import Mathlib\ntheorem h : True := by sorry", "theorem t : True :=")
    v = final_check(hidden, "by exact h", FileEnv())
    assert v.messages == []  # the header's own sorry warning is not the proof's message...
    assert "depends on sorryAx" in " ".join(v.reasons)  # ...but using it is caught by #print axioms


def test_timeout(project):
    out = lean_file_check(project, "theorem t : True := by HANG", "", timeout=1)
    assert out.timed_out
