"""The pooled Lean REPL backend: `ReplEnv(ReplConfig(project=...))` is a thread-safe `ProofEnv`.

Proof states live inside one REPL process. If that process is gone (timeout, crash, recycling),
the state is rebuilt on another process by replaying the theorem and its tactics, so a search
never loses its tree to a dead REPL.
"""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from pydantic import BaseModel, Field, field_validator

from . import lean_project
from .protocol import CheckOutput, EnvError, LeanMessage, ProofFinished, TacticError, TacticResult, TacticState, Theorem
from .repl_pool import HeaderError, ReplPool, Worker
from .repl_process import ReplCrashed, ReplProcess, ReplTimeout
from .repl_protocol import ReplProtocolError, ReplResponse, parse_axioms
from .states import StateTable, UnknownState

_REPL_FAILURES = (ReplTimeout, ReplCrashed, ReplProtocolError)


class ReplConfig(BaseModel):
    """How to run and pool the REPL. Defaults run a 2-process pool in `project`."""

    project: str | None = Field(None, description="Lake project to run the REPL in (e.g. one requiring Mathlib)")
    repl_command: list[str] | None = Field(
        None, description="command that starts the REPL; default `lake env <project's repl binary>` or `lake exe repl`")
    pool_size: int = Field(2, ge=1, description="REPL processes kept alive (each holds one import header)")
    command_timeout: float = Field(60.0, gt=0, description="seconds per tactic/check command before kill + respawn")
    import_timeout: float = Field(600.0, gt=0, description="seconds to elaborate a header (e.g. `import Mathlib`)")
    memory_limit_mb: float | None = Field(16384, gt=0, description="kill a REPL whose resident memory passes this")
    max_commands: int | None = Field(2000, ge=1, description="recycle a REPL after this many commands")
    max_rss_growth_mb: float | None = Field(6144, gt=0, description="recycle a REPL whose memory grew this much")
    acquire_timeout: float | None = Field(None, gt=0, description="seconds to wait for a free REPL; None: forever")
    respawn: bool = Field(True, description="re-import a killed/recycled REPL's header in the background")
    max_states: int = Field(100_000, ge=1, description="open proof states kept (least recently used evicted); "
                                                       "searches release theirs when they end")

    @field_validator("repl_command")
    @classmethod
    def _non_empty(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and not value:
            raise ValueError("repl_command must name a program, e.g. ['lake', 'exe', 'repl']")
        return value


class _BadStatement(ValueError):
    pass


@dataclass
class _StateRef:
    """Where an open proof state lives, and how to rebuild it elsewhere."""

    theorem: Theorem
    tactics: tuple[str, ...]
    generation: int
    proof_state: int


class ReplEnv:
    """A `ProofEnv` over a pool of leanprover-community/repl processes."""

    def __init__(self, config: ReplConfig | None = None):
        self.config = config or ReplConfig()
        self.command, self.cwd = _resolve_command(self.config)
        self.pool = ReplPool(self._spawn, self.config.pool_size, self.config.import_timeout,
                             self.config.max_commands, self.config.max_rss_growth_mb, self.config.acquire_timeout,
                             respawn=self.config.respawn)
        self.states: StateTable[_StateRef] = StateTable(self.config.max_states, "ReplConfig.max_states")

    def _spawn(self) -> ReplProcess:
        return ReplProcess(self.command, cwd=self.cwd, memory_limit_mb=self.config.memory_limit_mb)

    def _timeout(self, timeout: float | None) -> float:
        return self.config.command_timeout if timeout is None else timeout

    # ---- ProofEnv --------------------------------------------------------------------------

    def start(self, theorem: Theorem, timeout: float | None = None) -> TacticState | TacticError:
        """Elaborate `header` + `statement by sorry` and return the goal of that sorry."""
        try:
            with self.pool.session(theorem.header) as worker:
                resp = self._send_statement(worker, theorem, self._timeout(timeout))
                return self._first_state(worker, theorem, resp)
        except (HeaderError, _BadStatement) as exc:
            return TacticError(f"starting {theorem.name}: {exc}")
        except ReplTimeout as exc:
            return TacticError(f"starting {theorem.name}: {exc}", timeout=True)
        except (ReplCrashed, ReplProtocolError) as exc:
            return TacticError(f"starting {theorem.name}: {exc}")

    def run_tactic(self, state: TacticState, tactic: str, timeout: float | None = None) -> TacticResult:
        """Run `tactic` on `state`, in the process holding it or on a rebuilt copy."""
        try:
            ref = self.states.get(state.id)
        except UnknownState as exc:
            return TacticError(str(exc))
        try:
            with self.pool.session(ref.theorem.header, prefer=ref.generation) as worker:
                proof_state = ref.proof_state
                if worker.generation != ref.generation:
                    proof_state = self._replay(worker, ref, self._timeout(timeout))
                    if isinstance(proof_state, TacticError):
                        return proof_state
                resp = worker.process.send({"tactic": tactic, "proofState": proof_state}, self._timeout(timeout))
                return self._tactic_result(worker, state.id, ref, tactic, resp)
        except HeaderError as exc:
            return TacticError(str(exc))
        except ReplTimeout as exc:
            return TacticError(str(exc), timeout=True)
        except (ReplCrashed, ReplProtocolError) as exc:
            return TacticError(f"the REPL failed, it will be restarted: {exc}")

    def release(self, state: TacticState) -> None:
        """Forget the proof `state` belongs to. The REPL cannot delete its own copies: they go when
        the process is recycled (`max_commands`, `max_rss_growth_mb`), which bounds its memory."""
        self.states.release(state.id)

    def check(self, source: str, header: str = "", timeout: float | None = None,
              print_axioms: Sequence[str] = ()) -> CheckOutput:
        """Elaborate `source` in the header's environment (fresh: nothing from earlier commands)."""
        try:
            with self.pool.session(header) as worker:
                resp = worker.process.send(_cmd(source, worker.env), self._timeout(timeout))
                out = _check_output(resp)
                if print_axioms and resp.env is not None:
                    text = "\n".join(f"#print axioms {name}" for name in print_axioms)
                    listed = worker.process.send({"cmd": text, "env": resp.env}, self._timeout(timeout))
                    out.axioms = parse_axioms(listed.messages)
                    out.messages += [LeanMessage(m.severity, f"#print axioms: {m.text}") for m in listed.errors]
                    if listed.error:
                        out.messages.append(LeanMessage("error", f"#print axioms: {listed.error}"))
                return out
        except HeaderError as exc:
            return CheckOutput(messages=[LeanMessage("error", str(exc))])
        except ReplTimeout as exc:
            return CheckOutput(timed_out=True, crashed=None, messages=[LeanMessage("error", str(exc))])
        except (ReplCrashed, ReplProtocolError) as exc:
            return CheckOutput(crashed=str(exc), messages=[LeanMessage("error", str(exc))])

    def close(self) -> None:
        """Stop all REPL processes."""
        self.pool.close()
        self.states.clear()

    def __enter__(self) -> "ReplEnv":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- helpers ---------------------------------------------------------------------------

    def _send_statement(self, worker: Worker, theorem: Theorem, timeout: float) -> ReplResponse:
        statement = theorem.statement.rstrip()
        if not statement.endswith(":="):
            raise _BadStatement(f"the statement of {theorem.name} must end with ':=' "
                                f"(got ...{statement[-40:]!r}); drop any trailing `by sorry`")
        return worker.process.send(_cmd(statement + " by sorry", worker.env), timeout)

    def _first_state(self, worker: Worker, theorem: Theorem, resp: ReplResponse) -> TacticState | TacticError:
        if resp.error or resp.errors:
            return TacticError(_error_text(resp))
        with_state = [s for s in resp.sorries if s.proof_state is not None]
        if not with_state:
            return TacticError(f"Lean reported no goal for {theorem.name}")
        goal = with_state[0]
        return self._register(_StateRef(theorem, (), worker.generation, goal.proof_state), [goal.goal])

    def _register(self, ref: _StateRef, goals: list[str], parent: int | None = None) -> TacticState:
        handle = self.states.add(ref, parent)
        return TacticState(id=handle, pp="\n\n".join(goals), goals=tuple(goals))

    def _tactic_result(self, worker: Worker, parent: int, ref: _StateRef, tactic: str,
                       resp: ReplResponse) -> TacticResult:
        if resp.error or resp.errors:
            return TacticError(_error_text(resp))
        status = resp.proof_status or ""
        if "sorry" in status:
            return TacticError("the tactic leaves a `sorry` in the proof")
        if "metavariable" in status:
            return TacticError("the tactic leaves unassigned metavariables in the proof")
        tactics = ref.tactics + (tactic,)
        if resp.proof_state is None or resp.goals is None:
            return TacticError(f"unexpected REPL answer to a tactic: {resp.raw!r:.300}")
        if not resp.goals:
            return ProofFinished(tactics=tactics)
        return self._register(_StateRef(ref.theorem, tactics, worker.generation, resp.proof_state), resp.goals,
                              parent)

    def _replay(self, worker: Worker, ref: _StateRef, timeout: float) -> int | TacticError:
        """Rebuild `ref` in `worker` (its own process died or was recycled); return the new handle."""
        resp = self._send_statement(worker, ref.theorem, timeout)
        goals = [g for g in resp.sorries if g.proof_state is not None]
        if resp.error or resp.errors or not goals:
            return TacticError(f"could not rebuild the proof state: {_error_text(resp) or 'Lean reported no goal'}")
        proof_state = goals[0].proof_state
        for tactic in ref.tactics:
            resp = worker.process.send({"tactic": tactic, "proofState": proof_state}, timeout)
            if resp.error or resp.errors or resp.proof_state is None:
                return TacticError(f"could not rebuild the proof state at {tactic!r}: {_error_text(resp)}")
            proof_state = resp.proof_state
        ref.generation, ref.proof_state = worker.generation, proof_state
        return proof_state


def _cmd(text: str, env: int | None) -> dict:
    return {"cmd": text} if env is None else {"cmd": text, "env": env}


def _error_text(resp: ReplResponse) -> str:
    if resp.error:
        return resp.error
    return "\n".join(m.text if m.line in (None, 0) else f"{m.line}:{m.column}: {m.text}" for m in resp.errors)


def _check_output(resp: ReplResponse) -> CheckOutput:
    out = CheckOutput(messages=list(resp.messages), sorries=[s.goal for s in resp.sorries])
    if resp.error:
        out.messages.append(LeanMessage("error", resp.error))
    return out


def _resolve_command(config: ReplConfig) -> tuple[list[str], str | None]:
    """(argv, cwd) to start the REPL; EnvError naming what is missing otherwise."""
    cwd = str(lean_project.check_project(config.project)) if config.project else None
    if config.repl_command:
        program = config.repl_command[0]
        if shutil.which(program, path=os.environ.get("PATH")) is None and not Path(program).is_file():
            hint = lean_project.INSTALL_ELAN if Path(program).name in ("lake", "lean") else lean_project.INSTALL_REPL
            raise EnvError(f"REPL command {program!r} not found; {hint}")
        return list(config.repl_command), cwd
    if cwd is None:
        raise EnvError("no Lean project given: pass --project DIR (ReplConfig(project=...)) pointing at a Lake "
                       "project that requires the REPL, or set repl_command")
    return lean_project.repl_command(cwd), cwd
