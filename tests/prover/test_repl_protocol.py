"""The REPL client parses every response shape real Lean produced (recorded transcripts, replayed by a fake REPL)."""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from prover.repl_process import ReplProcess
from prover.repl_protocol import ReplResponse, parse_axioms, parse_response, split_responses
from prover.protocol import LeanMessage

FAKE = Path(__file__).parent / "fake_repl.py"
TRANSCRIPTS = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "lean" / "repl"


def _blocks(text: str) -> list[str]:
    return [b for b in re.split(r"\n\s*\n", text) if b.strip()]


def _command(block: str) -> dict:
    # The REPL joins a command's lines without newlines before parsing (see invalid_line_break.in).
    joined = "".join(block.split("\n"))
    try:
        return json.loads(joined)
    except json.JSONDecodeError:
        return json.loads(joined, strict=False)


def _transcripts() -> list[str]:
    if not TRANSCRIPTS.is_dir():
        return []
    names = sorted(str(p.relative_to(TRANSCRIPTS))[: -len(".in")] for p in TRANSCRIPTS.rglob("*.in"))
    return [n for n in names if (TRANSCRIPTS / f"{n}.expected.out").is_file()]


def _assert_parsed(resp: ReplResponse, raw: dict) -> None:
    assert resp.env == raw.get("env")
    assert [(m.severity, m.text, m.line, m.column, m.end_line, m.end_column) for m in resp.messages] == [
        (m["severity"], m["data"], m["pos"]["line"], m["pos"]["column"],
         (m.get("endPos") or {}).get("line"), (m.get("endPos") or {}).get("column"))
        for m in raw.get("messages", [])]
    assert [(s.goal, s.proof_state) for s in resp.sorries] == [
        (s["goal"], s.get("proofState")) for s in raw.get("sorries", [])]
    assert resp.goals == raw.get("goals")
    assert resp.proof_state == raw.get("proofState")
    assert resp.proof_status == raw.get("proofStatus")
    assert resp.traces == raw.get("traces", [])
    assert [t.tactic for t in resp.tactics] == [t["tactic"] for t in raw.get("tactics", [])]
    assert (resp.error is not None) == (set(raw) == {"message"})


@pytest.mark.parametrize("name", _transcripts())
def test_replays_recorded_transcript(name, shared_fixtures, tmp_path):
    base = shared_fixtures / "lean" / "repl" / name
    commands = [_command(b) for b in _blocks((base.parent / f"{base.name}.in").read_text())]
    expected = [json.loads(b) for b in _blocks((base.parent / f"{base.name}.expected.out").read_text())]
    proc = ReplProcess([sys.executable, str(FAKE), "--transcript", str(base)])
    try:
        for cmd, raw in zip(commands, expected):
            resp = proc.send(cmd, timeout=30)
            assert "fake_repl" not in (resp.error or ""), resp.error  # the fake saw exactly the recorded command
            _assert_parsed(resp, raw)
    finally:
        proc.close()


def test_transcripts_cover_every_response_shape(shared_fixtures):
    """Guard against a fixture set that silently stops exercising a shape the client must parse."""
    seen = set()
    for name in _transcripts():
        for block in _blocks((shared_fixtures / "lean" / "repl" / f"{name}.expected.out").read_text()):
            resp = parse_response(json.loads(block))
            seen |= {f"severity:{m.severity}" for m in resp.messages}
            seen |= {"sorry+state" for s in resp.sorries if s.proof_state is not None}
            seen |= {"goals"} if resp.goals else set()
            seen |= {"finished"} if resp.goals == [] and resp.proof_status == "Completed" else set()
            seen |= {"traces"} if resp.traces else set()
            seen |= {"tactics"} if resp.tactics else set()
            seen |= {"infotree"} if resp.infotree else set()
            seen |= {"error"} if resp.error else set()
    assert seen >= {"severity:error", "severity:warning", "severity:info", "sorry+state", "goals",
                    "finished", "traces", "tactics", "infotree", "error"}


def test_split_responses_keeps_partial_tail():
    done, rest = split_responses(b'{"env": 0}\n\n{"env":\n 1}\n\n{"en')
    assert [json.loads(d) for d in done] == [{"env": 0}, {"env": 1}]
    assert rest == b'{"en'


def test_noise_before_the_first_response_is_skipped():
    from prover.repl_protocol import ReplProtocolError, decode_response

    assert decode_response(b'info: building repl\n{"env": 0}') == {"env": 0}
    with pytest.raises(ReplProtocolError, match="non-JSON"):
        decode_response(b"this is not JSON at all")


def test_parse_axioms_reads_print_axioms_messages():
    msgs = [LeanMessage("info", "'foo' depends on axioms: [propext, Classical.choice, Quot.sound]"),
            LeanMessage("info", "'bar' does not depend on any axioms"),
            LeanMessage("info", "'one_add_one' depends on axioms: [Lean.ofReduceBool,\n Lean.trustCompiler]"),
            LeanMessage("info", "'add_zero'' depends on axioms: [propext]"),
            LeanMessage("error", "'baz' depends on axioms: [sorryAx]")]
    assert parse_axioms(msgs) == {"foo": ["propext", "Classical.choice", "Quot.sound"], "bar": [],
                                  "one_add_one": ["Lean.ofReduceBool", "Lean.trustCompiler"],
                                  "add_zero'": ["propext"]}
