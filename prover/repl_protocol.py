"""leanprover-community/repl's JSON protocol: encode commands, parse responses into typed values.

Wire format: each command is one JSON object followed by a blank line on stdin; each response is
a (pretty-printed, multi-line) JSON object followed by a blank line on stdout.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from .protocol import LeanMessage


class ReplProtocolError(RuntimeError):
    """The REPL wrote something that is not a protocol response."""


@dataclass(frozen=True)
class Sorry:
    """A `sorry` Lean reported: its goal and, when the REPL gives one, a proof state handle."""

    goal: str
    proof_state: int | None = None
    line: int | None = None
    column: int | None = None


@dataclass(frozen=True)
class TacticTrace:
    """One tactic from an `allTactics` file or command response."""

    tactic: str
    goals: str
    proof_state: int | None = None
    used_constants: tuple[str, ...] = ()


@dataclass
class ReplResponse:
    """One parsed REPL response. `error` is set for protocol-level errors ({"message": ...})."""

    env: int | None = None
    messages: list[LeanMessage] = field(default_factory=list)
    sorries: list[Sorry] = field(default_factory=list)
    proof_state: int | None = None
    proof_status: str | None = None
    goals: list[str] | None = None
    traces: list[str] = field(default_factory=list)
    tactics: list[TacticTrace] = field(default_factory=list)
    infotree: Any = None
    error: str | None = None
    raw: dict = field(default_factory=dict)

    @property
    def errors(self) -> list[LeanMessage]:
        return [m for m in self.messages if m.severity == "error"]

    @property
    def is_tactic_response(self) -> bool:
        return self.proof_state is not None and self.goals is not None


def encode_command(cmd: dict) -> bytes:
    """One command as the REPL reads it: a single JSON line, then a blank line."""
    # json.dumps escapes newlines, so the command never contains the blank-line separator.
    return (json.dumps(cmd, ensure_ascii=False) + "\n\n").encode("utf-8")


def split_responses(buffer: bytes) -> tuple[list[bytes], bytes]:
    """Cut complete blank-line-terminated responses off the front of `buffer`; return (done, rest)."""
    done = []
    while True:
        idx = buffer.find(b"\n\n")
        if idx < 0:
            return done, buffer
        chunk, buffer = buffer[:idx], buffer[idx + 2:]
        if chunk.strip():
            done.append(chunk)


def decode_response(chunk: bytes) -> dict:
    """Parse one response's bytes as a JSON object."""
    text = chunk.decode("utf-8", errors="replace")
    # `lake exe repl` may print build progress before the first response: skip lines before `{`.
    start = text.find("\n{")
    if not text.lstrip().startswith("{") and start >= 0:
        text = text[start + 1:]
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ReplProtocolError(f"REPL wrote non-JSON output ({exc}): {text[:300]!r}") from None
    if not isinstance(value, dict):
        raise ReplProtocolError(f"REPL response is not a JSON object: {text[:300]!r}")
    return value


def _pos(obj: Any) -> tuple[int | None, int | None]:
    if isinstance(obj, dict):
        return obj.get("line"), obj.get("column")
    return None, None


def parse_message(raw: dict) -> LeanMessage:
    """A REPL/`lean --json` message ({"severity", "pos", "endPos", "data"}) as a LeanMessage."""
    line, column = _pos(raw.get("pos"))
    end_line, end_column = _pos(raw.get("endPos"))
    severity = str(raw.get("severity", "error"))
    return LeanMessage(
        severity="info" if severity == "information" else severity,  # `lean --json` says "information"
        text=str(raw.get("data", "")),
        line=line, column=column, end_line=end_line, end_column=end_column,
    )


def parse_response(raw: dict) -> ReplResponse:
    """Type a decoded response; unknown keys are kept in `raw`."""
    resp = ReplResponse(raw=raw)
    resp.env = raw.get("env")
    resp.messages = [parse_message(m) for m in raw.get("messages") or []]
    for s in raw.get("sorries") or []:
        line, column = _pos(s.get("pos"))
        resp.sorries.append(Sorry(goal=s.get("goal", ""), proof_state=s.get("proofState"),
                                  line=line, column=column))
    resp.proof_state = raw.get("proofState")
    resp.proof_status = raw.get("proofStatus")
    goals = raw.get("goals")
    resp.goals = list(goals) if isinstance(goals, list) else None
    resp.traces = list(raw.get("traces") or [])
    for t in raw.get("tactics") or []:
        resp.tactics.append(TacticTrace(
            tactic=t.get("tactic", ""), goals=t.get("goals", ""), proof_state=t.get("proofState"),
            used_constants=tuple(t.get("usedConstants") or ())))
    resp.infotree = raw.get("infotree")
    # A bare {"message": ...} is the REPL refusing the command (unknown env, tactic parse error).
    if "message" in raw and not any(k in raw for k in ("env", "proofState")):
        resp.error = str(raw["message"])
    return resp


# Names may contain primes (`add_zero'` prints as 'add_zero''), so match up to the last quote.
_AXIOMS_RE = re.compile(r"^'(?P<name>[^\n]*)' depends on axioms: \[(?P<axioms>[^\]]*)\]", re.M)
_NO_AXIOMS_RE = re.compile(r"^'(?P<name>[^\n]*)' does not depend on any axioms", re.M)


def parse_axioms(messages: list[LeanMessage]) -> dict[str, list[str]]:
    """Read `#print axioms` info messages into {declaration: [axiom, ...]}."""
    found: dict[str, list[str]] = {}
    for m in messages:
        if m.severity != "info":
            continue
        for hit in _AXIOMS_RE.finditer(m.text):
            names = [a.strip() for a in hit.group("axioms").split(",") if a.strip()]
            found[hit.group("name")] = names
        for hit in _NO_AXIOMS_RE.finditer(m.text):
            found[hit.group("name")] = []
    return found
