"""A fake leanprover-community/repl: a real subprocess speaking the REPL's stdin/stdout protocol.

Modes:
  --transcript DIR/NAME   replay the recorded real responses NAME.expected.out, one per command
                          of NAME.in, checking each command received equals the recorded one.
  (default) mini-Lean     a small rule-based imitation of Lean whose responses are shaped like the
                          recorded ones (messages, sorries, proof states, `#print axioms`).
Fault injection in mini-Lean mode, triggered by words in a command or tactic:
  fake_hang (never answers), fake_crash (half a response, then exit 1), fake_garbage (non-JSON),
  fake_eof (exit 0 silently), fake_grow (keep 60 MiB more resident), fake_slow (sleep 1 s first).
  --import-delay S sleeps S seconds for each command with `import`; --command-delay S sleeps S
  seconds for every command (Lean's own elaboration time, for benchmarks); --log FILE appends every
  command received (one JSON per line) so tests can count imports; --timing FILE appends
  {"import": bool, "seconds": s} per command, the time from reading it to writing its answer, after a
  first line {"startup": s}, the seconds from the process's creation to reading commands.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time

CLASSICAL = ["propext", "Classical.choice", "Quot.sound"]
CLOSING = {"rfl": [], "decide": [], "trivial": [], "simp": CLASSICAL, "norm_num": CLASSICAL,
           "omega": ["propext"], "linarith": CLASSICAL, "nlinarith": CLASSICAL,
           "positivity": CLASSICAL, "exact": [], "assumption": [], "tauto": CLASSICAL,
           "native_decide": ["Lean.ofReduceBool", "Lean.trustCompiler"]}
_HOARD: list[bytearray] = []


def read_command(stream) -> str | None:
    """Lines up to a blank line, joined the way the REPL joins them; None at EOF."""
    lines = []
    for line in stream:
        if not line.strip():
            if lines:
                return "".join(l.rstrip("\n") for l in lines)
            continue
        lines.append(line)
    return "".join(l.rstrip("\n") for l in lines) if lines else None


def write(obj_or_text) -> None:
    text = obj_or_text if isinstance(obj_or_text, str) else json.dumps(obj_or_text, indent=1, ensure_ascii=False)
    sys.stdout.write(text.rstrip("\n") + "\n\n")
    sys.stdout.flush()


def parse_json(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return json.loads(text, strict=False)


def replay(base: str, log) -> None:
    with open(base + ".in", encoding="utf-8") as f:
        commands = [parse_json("".join(c.split("\n"))) for c in _blocks(f.read())]
    with open(base + ".expected.out", encoding="utf-8") as f:
        responses = _blocks(f.read())
    for want, response in zip(commands, responses):
        got = read_command(sys.stdin)
        if got is None:
            return
        _log(log, got)
        if parse_json(got) != want:
            write({"message": f"fake_repl: expected command {want!r}, got {got!r}"})
            continue
        write(response)


def _blocks(text: str) -> list[str]:
    return [b for b in re.split(r"\n\s*\n", text) if b.strip()]


def _log(log, text: str) -> None:
    if log:
        with open(log, "a", encoding="utf-8") as f:
            f.write(text + "\n")


# ---- mini-Lean -----------------------------------------------------------------------------

def msg(severity: str, line: int, col: int, end_col: int, data: str, end_line: int | None = None) -> dict:
    return {"severity": severity, "pos": {"line": line, "column": col},
            "endPos": {"line": end_line or line, "column": end_col}, "data": data}


class MiniLean:
    """Environments are immutable dicts {declaration: axioms}; proof states are goal lists."""

    def __init__(self, import_delay: float, command_delay: float = 0.0):
        self.import_delay = import_delay
        self.command_delay = command_delay
        self.envs: list[dict[str, list[str]]] = []
        self.states: list[dict] = []

    def handle(self, cmd: dict) -> dict:
        if self.command_delay:
            time.sleep(self.command_delay)
        if "tactic" in cmd:
            return self.tactic(cmd)
        if "cmd" not in cmd:
            return {"message": f"fake_repl: unsupported command {sorted(cmd)}"}
        base: dict[str, list[str]] = {}
        if "env" in cmd:
            if not 0 <= cmd["env"] < len(self.envs):
                return {"message": "Unknown environment."}
            base = self.envs[cmd["env"]]
        text = cmd["cmd"]
        fault(text)
        if re.search(r"^import ", text, re.M):
            time.sleep(self.import_delay)
        return self.elaborate(text, dict(base))

    def elaborate(self, text: str, env: dict[str, list[str]]) -> dict:
        messages, sorries = [], []
        lines = text.split("\n")
        decls = [i for i, l in enumerate(lines) if re.match(r"(theorem|lemma|axiom|example|#print axioms)\b", l)]
        for k, start in enumerate(decls):
            end = decls[k + 1] if k + 1 < len(decls) else len(lines)
            chunk = "\n".join(lines[start:end])
            if chunk.startswith("#print axioms"):
                name = chunk.split()[2]
                if name not in env:
                    messages.append(msg("error", start + 1, 14, 14 + len(name), f"Unknown constant `{name}`"))
                elif env[name]:
                    messages.append(msg("info", start + 1, 0, 13, f"'{name}' depends on axioms: [{', '.join(sorted(env[name]))}]"))
                else:
                    messages.append(msg("info", start + 1, 0, 13, f"'{name}' does not depend on any axioms"))
            elif chunk.startswith("axiom"):
                name = chunk.split()[1]
                env[name] = [name]
            else:
                self.declaration(chunk, start, env, messages, sorries)
        self.envs.append(env)
        out: dict = {}
        if sorries:
            out["sorries"] = sorries
        if messages:
            out["messages"] = messages
        out["env"] = len(self.envs) - 1
        return out

    def declaration(self, chunk: str, start: int, env, messages, sorries) -> None:
        m = re.match(r"(theorem|lemma|example)\s*([^\s:(\[{]*)(.*?):=(.*)", chunk, re.S)
        if not m:
            messages.append(msg("error", start + 1, 0, 1, "unexpected token; expected command"))
            return
        kind, name, sig, proof = m.groups()
        proof = re.sub(r"--[^\n]*|/-.*?-/", "", proof, flags=re.S)  # Lean ignores comments
        name_col = len(kind) + 1 if name else 0
        name_end = name_col + len(name) if name else len(kind)
        if name and name in env:
            messages.append(msg("error", start + 1, name_col, name_end, f"'{name}' has already been declared"))
            return
        goal = goal_of(sig)
        proof_line = start + 1 + chunk[:m.start(4)].count("\n")
        by_col = len(chunk[:m.start(4)].split("\n")[-1]) + (len(proof) - len(proof.lstrip(" ")))
        axioms, errors = set(), []
        if re.search(r"\bsorry\b", proof):
            col = by_col + proof.strip().find("sorry")
            sorries.append({"proofState": self.new_state([goal], []), "pos": {"line": proof_line, "column": col},
                            "goal": goal, "endPos": {"line": proof_line, "column": col + 5}})
            messages.append(msg("warning", start + 1, name_col, name_end, "declaration uses `sorry`"))
            axioms.add("sorryAx")
        else:
            tactics = [t.strip() for t in re.split(r"[\n;]", re.sub(r"^\s*by\b", "", proof.strip())) if t.strip()]
            closed = False
            for tac in tactics:
                tac = re.sub(r"^set_option \S+ \S+ in ", "", tac)
                word = tac.split()[0]
                if tac.startswith("exact ") and tac.split()[1] in env:
                    axioms.update(env[tac.split()[1]])
                    closed = True
                elif word == "exact?":  # succeeds with a suggestion, like Mathlib's exact?
                    messages.append(msg("info", proof_line + 1, 2, 8, "Try this:\n  [apply] exact rfl"))
                    closed = True
                elif word == "fake_error":
                    errors.append(msg("error", proof_line, by_col, by_col + 10, "fake_error: elaboration failed"))
                elif word in CLOSING:
                    axioms.update(CLOSING[word])
                    closed = True
            if not closed and not errors:
                errors.append(msg("error", proof_line, by_col, by_col + 2, f"unsolved goals\n{goal}"))
            messages.extend(errors)
        if name and not errors:
            env[name] = sorted(axioms)

    def new_state(self, goals: list[str], axioms: list[str]) -> int:
        self.states.append({"goals": goals, "axioms": axioms})
        return len(self.states) - 1

    def tactic(self, cmd: dict) -> dict:
        ps = cmd.get("proofState", -1)
        if not 0 <= ps < len(self.states):
            return {"message": "Unknown proof state."}
        goals = list(self.states[ps]["goals"])
        for tac in [t.strip() for t in re.split(r"[\n;]", cmd["tactic"]) if t.strip()]:
            fault(tac)
            word = tac.split()[0]
            if word == "sorry":
                return {"proofStatus": "Incomplete: contains sorry", "proofState": self.new_state([], []), "goals": []}
            if word == "exact" and len(tac.split()) > 1 and tac.split()[1].startswith("my_fake"):
                return {"proofStatus": "Incomplete: contains sorry", "proofState": self.new_state([], []),
                        "messages": [msg("error", 0, 0, 0, f"Unknown identifier `{tac.split()[1]}`")], "goals": []}
            if word in ("skip", "fake_slow", "fake_grow"):
                continue
            if word == "intro" and goals and " → " in goals[0]:
                hyps, target = goals[0].rsplit("⊢ ", 1)
                left, right = target.split(" → ", 1)
                goals[0] = f"{hyps}{tac.split()[1] if len(tac.split()) > 1 else 'a✝'} : {left}\n⊢ {right}"
                continue
            if word == "constructor" and goals and " ∧ " in goals[0]:
                hyps, target = goals[0].rsplit("⊢ ", 1)
                left, right = target.split(" ∧ ", 1)
                goals[0:1] = [f"{hyps}⊢ {left}", f"{hyps}⊢ {right}"]
                continue
            if word in CLOSING and goals:
                goals.pop(0)
                continue
            return {"message": "Lean error:\n<input>:1:1: unknown tactic"}
        status = "Completed" if not goals else "Incomplete: open goals remain"
        return {"proofStatus": status, "proofState": self.new_state(goals, []), "goals": goals}


def goal_of(sig: str) -> str:
    """`(x y : Nat) (h : 0 < x) : x + y = y + x` -> Lean's goal display."""
    depth, split = 0, None
    for i, ch in enumerate(sig):
        depth += ch in "([{⦃" and 1 or 0
        depth -= ch in ")]}⦄" and 1 or 0
        if ch == ":" and depth == 0:
            split = i
    if split is None:
        return "⊢ " + sig.strip()
    hyps = [f"{b.rsplit(':', 1)[0].strip()} : {b.rsplit(':', 1)[1].strip()}"
            for b in re.findall(r"[({\[]([^(){}\[\]]*:[^(){}\[\]]*)[)}\]]", sig[:split])]
    return "".join(h + "\n" for h in hyps) + "⊢ " + sig[split + 1:].strip()


def fault(text: str) -> None:
    if "fake_hang" in text:
        time.sleep(3600)
    if "fake_crash" in text:
        sys.stdout.write('{"proofStatus": "Incomp')
        sys.stdout.flush()
        os._exit(1)
    if "fake_eof" in text:
        os._exit(0)
    if "fake_grow" in text:
        chunk = bytearray(60 * 1024 * 1024)
        for i in range(0, len(chunk), 4096):  # touch every page so it is resident
            chunk[i] = 1
        _HOARD.append(chunk)
    if "fake_slow" in text:
        time.sleep(1.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--transcript")
    parser.add_argument("--import-delay", type=float, default=0.0)
    parser.add_argument("--command-delay", type=float, default=0.0)
    parser.add_argument("--log")
    parser.add_argument("--timing")
    args = parser.parse_args()
    sys.stdin.reconfigure(encoding="utf-8")
    sys.stdout.reconfigure(encoding="utf-8")
    if args.transcript:
        replay(args.transcript, args.log)
        return
    lean = MiniLean(args.import_delay, args.command_delay)
    if args.timing:
        _log(args.timing, json.dumps({"startup": _age()}))
    while (text := read_command(sys.stdin)) is not None:
        start = time.perf_counter()
        _log(args.log, text)
        answer(lean, text)
        if args.timing:
            _log(args.timing, json.dumps({"import": _is_import(text), "seconds": time.perf_counter() - start}))


def _age() -> float:
    """Seconds since this process was created (interpreter start-up included), from /proc."""
    try:
        with open("/proc/self/stat", encoding="ascii") as f:
            started = int(f.read().rsplit(")", 1)[1].split()[19]) / os.sysconf("SC_CLK_TCK")
        return max(0.0, time.clock_gettime(time.CLOCK_BOOTTIME) - started)
    except (OSError, ValueError, IndexError):
        return 0.0


def _is_import(text: str) -> bool:
    try:
        return bool(re.search(r"^import ", json.loads(text).get("cmd", ""), re.M))
    except (ValueError, AttributeError):
        return False


def answer(lean: MiniLean, text: str) -> None:
    try:
        cmd = json.loads(text)
    except json.JSONDecodeError as exc:
        write({"message": f"Could not parse JSON:\n{exc}"})
        return
    if "fake_garbage" in json.dumps(cmd, ensure_ascii=False):
        write("this is not JSON at all")
        return
    write(lean.handle(cmd))


if __name__ == "__main__":
    main()
