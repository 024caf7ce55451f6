"""The plain handlers the actors wrap, without Ray: the prover keeps at most `max_projects` Lean environments."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from workers.handlers import ProverHandler

FAKE_REPL = [sys.executable, str(Path(__file__).resolve().parents[1] / "prover" / "fake_repl.py")]
THEOREM = {"name": "comm", "header": "", "statement": "theorem comm (a b : Nat) : a + b = b + a :="}


@pytest.fixture
def projects(tmp_path) -> list[str]:
    dirs = []
    for i in range(4):
        (tmp_path / f"p{i}").mkdir()
        (tmp_path / f"p{i}" / "lakefile.lean").write_text("import Lake\n")
        dirs.append(str(tmp_path / f"p{i}"))
    return dirs


def test_idle_environments_beyond_max_projects_close_least_recently_used_first(projects):
    handler = ProverHandler(None, repl_command=FAKE_REPL, max_projects=2)
    try:
        envs = {}
        for p in projects[:3]:
            result = handler.prove(THEOREM, {"generator": "builtin", "project": p, "search": {"budget_seconds": 30}})
            assert result["status"] == "proved", result
            envs[p] = handler._envs[p]
        assert list(handler._envs) == projects[1:3] and envs[projects[0]].pool._closed
        with handler.env(projects[1]):  # used again: now the most recent
            pass
        with handler.env(projects[3]):
            assert list(handler._envs) == [projects[1], projects[3]] and envs[projects[2]].pool._closed
    finally:
        handler.close()
    assert not handler._envs and envs[projects[1]].pool._closed


def test_an_environment_in_use_is_never_closed(projects):
    handler = ProverHandler(None, repl_command=FAKE_REPL, max_projects=1)
    try:
        with handler.env(projects[0]) as first:
            with handler.env(projects[1]) as second:  # both in use: over the bound, nothing closes
                assert list(handler._envs) == projects[:2] and not first.pool._closed
            assert list(handler._envs) == [projects[0]] and second.pool._closed  # the only idle one
            assert not first.pool._closed
        assert list(handler._envs) == [projects[0]]
    finally:
        handler.close()
