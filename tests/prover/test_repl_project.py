"""Finding lake, the project and the REPL: each missing piece gives one message saying how to fix it."""
from __future__ import annotations

import json
import stat

import pytest

from prover import EnvError
from prover.lean_project import repl_command
from prover.repl import ReplConfig, ReplEnv


def _exe(path, body="#!/bin/sh\nexit 0\n"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.fixture
def no_lean(tmp_path, monkeypatch):
    """A PATH and ELAN_HOME with no Lean toolchain on them."""
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    monkeypatch.setenv("ELAN_HOME", str(tmp_path / "no-elan"))
    return tmp_path


@pytest.fixture
def project(tmp_path):
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "lakefile.toml").write_text('name = "proj"\n')
    return proj


def test_missing_project_dir():
    with pytest.raises(EnvError, match="does not exist"):
        ReplEnv(ReplConfig(project="/nonexistent/lean/project"))


def test_dir_without_lakefile(tmp_path):
    with pytest.raises(EnvError, match="not a Lake project.*lake new"):
        ReplEnv(ReplConfig(project=str(tmp_path)))


def test_no_project_no_command():
    with pytest.raises(EnvError, match="--project"):
        ReplEnv(ReplConfig())


def test_no_lake_says_how_to_install_elan(no_lean, project):
    with pytest.raises(EnvError, match=r"no Lean toolchain.*elan-init\.sh -sSf \| sh"):
        ReplEnv(ReplConfig(project=str(project)))


def test_no_repl_says_how_to_add_it(no_lean, project):
    _exe(no_lean / "no-elan" / "bin" / "lake")  # elan's lake, found without PATH
    with pytest.raises(EnvError, match=r'no REPL.*require REPL from git "https://github.com/leanprover-community/repl"'):
        ReplEnv(ReplConfig(project=str(project)))


def test_repl_found_built_or_required(no_lean, project):
    lake = _exe(no_lean / "no-elan" / "bin" / "lake")
    (project / "lake-manifest.json").write_text(json.dumps({"packages": [{"name": "REPL"}]}))
    assert repl_command(project) == [str(lake), "exe", "repl"]
    built = _exe(project / ".lake" / "packages" / "REPL" / ".lake" / "build" / "bin" / "repl")
    assert repl_command(project) == [str(lake), "env", str(built)]


def test_missing_repl_command_program(no_lean):
    with pytest.raises(EnvError, match="'lake' not found.*elan"):
        ReplEnv(ReplConfig(repl_command=["lake", "exe", "repl"]))
    with pytest.raises(EnvError, match="not found.*leanprover-community/repl"):
        ReplEnv(ReplConfig(repl_command=["/opt/nowhere/repl"]))


def test_message_is_one_line_naming_the_project(no_lean, project):
    _exe(no_lean / "no-elan" / "bin" / "lake")
    with pytest.raises(EnvError) as info:
        ReplEnv(ReplConfig(project=str(project)))
    assert "\n" not in str(info.value) and str(project.resolve()) in str(info.value)
