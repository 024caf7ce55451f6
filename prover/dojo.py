"""The LeanDojo backend: tactic-level interaction with theorems of a repository LeanDojo has traced.

`lean_dojo` is imported only when a session starts: at import it runs git, reads `.env` and
resets loguru's handlers, none of which `import prover` should do.
"""
from __future__ import annotations

import json
import os
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from pydantic import BaseModel, Field

from . import lean_project
from .protocol import CheckOutput, EnvError, LeanMessage, ProofFinished, TacticError, TacticResult, TacticState, Theorem
from .repl_protocol import parse_axioms, parse_message
from .states import StateTable, UnknownState


class DojoConfig(BaseModel):
    """Which traced repository and file the theorems come from (`--repo --commit --file`)."""

    repo: str = Field(description="git URL or local path of the Lean repository")
    commit: str = Field(description="commit SHA (or tag) that LeanDojo traces")
    file: str = Field(description="path of the .lean file inside the repository")
    timeout: int = Field(600, gt=0, description="seconds LeanDojo allows each interaction")
    build_deps: bool = Field(True, description="let LeanDojo trace/build the repo's dependencies")
    additional_imports: list[str] = Field(default_factory=list)
    max_states: int = Field(100_000, ge=1, description="open proof states kept (least recently used evicted); "
                                                       "searches release theirs when they end")


@dataclass
class _Session:
    """One open `lean_dojo.Dojo` (one Lean process) for one theorem."""

    dojo: Any
    initial: Any
    generation: int
    lock: threading.Lock


@dataclass
class _StateRef:
    theorem: Theorem
    tactics: tuple[str, ...]
    generation: int
    dojo_state: Any


def _lean_dojo():
    """Import lean_dojo on first use, without LeanDojo's remote cache (no network here)."""
    os.environ.setdefault("DISABLE_REMOTE_CACHE", "1")
    try:
        import lean_dojo
    except ImportError as exc:
        raise EnvError(f"LeanDojo is not installed ({exc}); `pip install lean-dojo`") from None
    return lean_dojo


class DojoEnv:
    """A `ProofEnv` over LeanDojo. `Theorem.name` is the theorem's fully qualified name."""

    def __init__(self, config: DojoConfig):
        self.config = config
        _validate(config)
        self._sessions: dict[str, _Session] = {}
        # A theorem's Dojo (one Lean process) closes when the last proof of that theorem is released.
        self.states: StateTable[_StateRef] = StateTable(config.max_states, "DojoConfig.max_states",
                                                        on_key_gone=self._drop)
        self._lock = threading.Lock()
        self._generation = 0

    def start(self, theorem: Theorem, timeout: float | None = None) -> TacticState | TacticError:
        """Open (or reuse) the Dojo for `theorem.name` and return its initial state."""
        try:
            session = self._session(theorem.name, fresh=False)
        except EnvError:
            raise
        except Exception as exc:  # DojoInitError, theorem not found in the traced file, ...
            return TacticError(f"LeanDojo could not start {theorem.name}: {exc}")
        return self._wrap(theorem, (), session, session.initial, None)

    def run_tactic(self, state: TacticState, tactic: str, timeout: float | None = None) -> TacticResult:
        """Run one tactic through `Dojo.run_tac`; a timed-out or crashed Dojo is reopened and replayed."""
        ld = _lean_dojo()
        try:
            ref = self.states.get(state.id)
        except UnknownState as exc:
            return TacticError(str(exc))
        session = self._session(ref.theorem.name, fresh=False)
        with session.lock:
            try:
                dojo_state = ref.dojo_state if session.generation == ref.generation else self._replay(session, ref)
                if isinstance(dojo_state, TacticError):
                    return dojo_state
                result = session.dojo.run_tac(dojo_state, tactic)
            except ld.DojoTacticTimeoutError:
                self._drop(ref.theorem.name)
                return TacticError(f"LeanDojo timed out after {self.config.timeout}s on {tactic!r}", timeout=True)
            except ld.DojoCrashError as exc:
                self._drop(ref.theorem.name)
                oom = " (out of memory)" if exc.is_out_of_memory else ""
                return TacticError(f"LeanDojo crashed{oom} on {tactic!r}: {exc}; it will be restarted")
        return self._map(ld, ref.theorem, ref.tactics + (tactic,), session, result, state.id)

    def release(self, state: TacticState) -> None:
        """Forget the proof `state` belongs to; the theorem's Dojo (a Lean process) closes with its last proof."""
        self.states.release(state.id)

    def _map(self, ld, theorem: Theorem, tactics: tuple[str, ...], session: _Session, result,
             parent: int) -> TacticResult:
        if isinstance(result, ld.ProofFinished):
            return ProofFinished(tactics=tactics)
        if isinstance(result, ld.LeanError):
            return TacticError(result.error)
        if isinstance(result, ld.ProofGivenUp):
            return TacticError("the tactic gave up (the proof would contain `sorry`)")
        return self._wrap(theorem, tactics, session, result, parent)

    def _wrap(self, theorem: Theorem, tactics: tuple[str, ...], session: _Session, dojo_state,
              parent: int | None) -> TacticState:
        handle = self.states.add(_StateRef(theorem, tactics, session.generation, dojo_state), parent, key=theorem.name)
        goals = tuple(g for g in dojo_state.pp.split("\n\n") if g.strip())
        return TacticState(id=handle, pp=dojo_state.pp, goals=goals)

    def _replay(self, session: _Session, ref: _StateRef):
        ld = _lean_dojo()
        state = session.initial
        for tactic in ref.tactics:
            state = session.dojo.run_tac(state, tactic)
            if not isinstance(state, ld.TacticState):
                return TacticError(f"could not rebuild the proof state at {tactic!r}: {state}")
        ref.generation, ref.dojo_state = session.generation, state
        return state

    def _session(self, name: str, fresh: bool) -> _Session:
        with self._lock:
            session = self._sessions.get(name)
            if session is not None and not fresh:
                return session
        ld = _lean_dojo()
        repo = ld.LeanGitRepo(self.config.repo, self.config.commit)
        thm = ld.Theorem(repo, self.config.file, name)
        dojo = ld.Dojo(thm, timeout=self.config.timeout, additional_imports=self.config.additional_imports,
                       build_deps=self.config.build_deps)
        dojo, initial = dojo.__enter__()
        with self._lock:
            self._generation += 1
            session = _Session(dojo, initial, self._generation, threading.Lock())
            self._sessions[name] = session
        return session

    def _drop(self, name: str) -> None:
        with self._lock:
            session = self._sessions.pop(name, None)
        if session is not None:
            try:
                session.dojo.__exit__(None, None, None)
            except Exception:  # the process may already be gone; nothing left to release
                pass

    def check(self, source: str, header: str = "", timeout: float | None = None,
              print_axioms: Sequence[str] = ()) -> CheckOutput:
        """Compile header + source with `lake env lean --json` inside the traced repository."""
        ld = _lean_dojo()
        repo = ld.LeanGitRepo(self.config.repo, self.config.commit)
        root = Path(ld.get_traced_repo_path(repo, self.config.build_deps))
        return lean_file_check(root, source, header, timeout or self.config.timeout, print_axioms)

    def close(self) -> None:
        """Exit every open Dojo."""
        with self._lock:
            names = list(self._sessions)
        self.states.clear()
        for name in names:
            self._drop(name)


def lean_file_check(project: Path, source: str, header: str, timeout: float,
                    print_axioms: Sequence[str] = ()) -> CheckOutput:
    """Run `lake env lean --json` on header + source (+ `#print axioms`) as a fresh file in `project`."""
    lake = lean_project.require_lake()
    body = header.rstrip("\n") + "\n\n" + source.rstrip("\n") + "\n"
    first_source_line = header.rstrip("\n").count("\n") + 3 if header.strip() else 1
    first_axiom_line = body.count("\n") + 2
    body += "\n" + "".join(f"#print axioms {n}\n" for n in print_axioms)
    with tempfile.NamedTemporaryFile("w", suffix=".lean", dir=project, prefix="ProofcodeCheck", delete=False) as f:
        f.write(body)
    try:
        proc = subprocess.run([lake, "env", "lean", "--json", f.name], cwd=project, capture_output=True,
                              text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return CheckOutput(timed_out=True, messages=[LeanMessage("error", f"lean timed out after {timeout:g}s")])
    finally:
        os.unlink(f.name)
    messages = []
    for line in proc.stdout.splitlines():
        try:
            messages.append(parse_message(json.loads(line)))
        except (json.JSONDecodeError, AttributeError):
            messages.append(LeanMessage("error", line))
    # Like the REPL, which elaborates the header as its own command: the header's warnings (e.g. a
    # helper lemma left as sorry) are not the proof's; its errors still are.
    body_msgs = [m for m in messages if (m.line or 0) < first_axiom_line
                 and (m.severity == "error" or (m.line or first_source_line) >= first_source_line)]
    out = CheckOutput(messages=body_msgs,
                      axioms=parse_axioms([m for m in messages if (m.line or 0) >= first_axiom_line]))
    out.sorries = [m.text for m in body_msgs if "declaration uses 'sorry'" in m.text or "uses `sorry`" in m.text]
    if proc.returncode not in (0, 1) and not messages:
        out.crashed = f"lean exited with code {proc.returncode}: {proc.stderr.strip()[-500:]}"
    return out


def _validate(config: DojoConfig) -> None:
    """Fail at construction, with the fix, when the repo or the toolchain is missing."""
    is_url = "://" in config.repo or config.repo.startswith("git@")
    if not is_url:
        path = Path(config.repo).expanduser()
        if not path.is_dir():
            raise EnvError(f"LeanDojo repo {config.repo!r} does not exist; pass --repo a git URL or a local clone")
        if not (path / ".git").exists():
            raise EnvError(f"LeanDojo repo {config.repo!r} is not a git repository (LeanDojo traces a commit); "
                           f"`git init && git commit` it or pass its URL")
        if not (path / config.file).is_file():
            raise EnvError(f"file {config.file!r} not found in {config.repo!r}; --file is relative to the repo root")
    lean_project.require_lake()
