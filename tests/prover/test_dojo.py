"""DojoEnv without Lean: lazy import, and clear errors for a missing repo, file or toolchain."""
from __future__ import annotations

import subprocess
import sys

import pytest

from prover import EnvError, ProofEnv
from prover.dojo import DojoConfig, DojoEnv


def test_importing_prover_does_not_import_lean_dojo():
    code = ("import sys, prover, prover.dojo, prover.repl, prover.verification; "
            "print(prover.DojoEnv.__name__, 'lean_dojo' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["DojoEnv", "False"]


@pytest.fixture
def git_repo(tmp_path):
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / "Foo.lean").write_text("theorem foo : True := trivial\n")
    return repo


def test_missing_repo():
    with pytest.raises(EnvError, match="does not exist"):
        DojoEnv(DojoConfig(repo="/nonexistent/repo", commit="abc", file="Foo.lean"))


def test_not_a_git_repo(tmp_path):
    with pytest.raises(EnvError, match="not a git repository"):
        DojoEnv(DojoConfig(repo=str(tmp_path), commit="abc", file="Foo.lean"))


def test_missing_file(git_repo):
    with pytest.raises(EnvError, match="'Bar.lean' not found"):
        DojoEnv(DojoConfig(repo=str(git_repo), commit="abc", file="Bar.lean"))


def test_missing_toolchain(git_repo, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    monkeypatch.setenv("ELAN_HOME", str(tmp_path / "no-elan"))
    with pytest.raises(EnvError, match="elan-init.sh"):
        DojoEnv(DojoConfig(repo=str(git_repo), commit="abc", file="Foo.lean"))


def test_dojo_env_is_a_proof_env():
    assert issubclass(DojoEnv, ProofEnv)  # runtime_checkable: has start/run_tactic/check/close
