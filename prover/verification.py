"""The strict final check: is `statement := proof` a real proof of exactly the submitted theorem?

A proof is accepted only if (1) its text cannot end the theorem and start other commands, and
uses no escape hatch the policy forbids (`native_decide`, `implemented_by`/`extern`, `set_option`,
new `axiom`s, `#exit`, meta-programs); (2) Lean elaborates header + statement + proof in a fresh
environment with no error and no `sorry`; (3) `#print axioms` on the theorem lists nothing beyond
the allowed axioms. Every failed condition adds a reason to the verdict.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from pydantic import BaseModel, Field

from .protocol import LeanMessage, ProofEnv, Theorem

STANDARD_AXIOMS = ("propext", "Classical.choice", "Quot.sound")
NATIVE_AXIOMS = ("Lean.ofReduceBool", "Lean.trustCompiler")

# Tokens that start a new command (or modify one). Lean needs no newline before a command, so
# any of these inside a proof could close the theorem early and add declarations after it.
COMMAND_KEYWORDS = (
    "theorem", "lemma", "def", "example", "abbrev", "instance", "structure", "class", "inductive",
    "coinductive", "opaque", "axiom", "macro", "macro_rules", "elab", "elab_rules", "syntax",
    "notation", "infix", "infixl", "infixr", "prefix", "postfix", "namespace", "section", "end",
    "attribute", "variable", "universe", "mutual", "deriving", "initialize", "builtin_initialize",
    "declare_syntax_cat", "export", "import", "omit", "include", "noncomputable", "private",
    "protected", "partial", "unsafe", "add_decl_doc", "run_cmd", "run_elab", "run_meta", "run_tac",
    "by_elab",  # runs arbitrary meta code in term position
)
_IDENT_EDGE = r"(?<![\w.'!?])({})(?![\w.'!?])"
_COMMANDS_RE = re.compile(_IDENT_EDGE.format("|".join(map(re.escape, COMMAND_KEYWORDS))))
_HASH_COMMAND_RE = re.compile(r"(?<![\w.])#[a-zA-Z_]+")  # #exit, #eval, #print, ... (not `#[...]` arrays)
_ATTRIBUTE_RE = re.compile(r"@\[")
_NATIVE_RE = re.compile(_IDENT_EDGE.format(r"native_decide|ofReduceBool|Lean\.ofReduceBool|Lean\.trustCompiler")
                        + r"|\+native\b|\bnative\s*:=\s*true")
_IMPLEMENTED_BY_RE = re.compile(_IDENT_EDGE.format("implemented_by|extern"))
_SET_OPTION_RE = re.compile(_IDENT_EDGE.format("set_option"))
_SORRY_RE = re.compile(_IDENT_EDGE.format("sorry|admit|sorryAx"))
_NAME_RE = re.compile(r"^\s*(?:@\[[^\]]*\]\s*)?(?:theorem|lemma)\s+([^\s:({\[⦃]+)")


class CheckPolicy(BaseModel):
    """What the final check tolerates. The defaults are strict: standard axioms only."""

    allowed_axioms: list[str] = Field(default_factory=lambda: list(STANDARD_AXIOMS))
    allow_native_decide: bool = Field(False, description="accept native_decide (trusts the compiler)")
    allow_implemented_by: bool = Field(False, description="accept implemented_by / extern attributes")
    allow_set_option: bool = Field(False, description="accept set_option in the proof")
    allow_new_axioms: bool = Field(False, description="accept axiom declarations in the proof")


@dataclass
class FinalVerdict:
    """`accepted` only when `reasons` is empty; `axioms` are what `#print axioms` listed."""

    accepted: bool
    reasons: list[str] = field(default_factory=list)
    messages: list[LeanMessage] = field(default_factory=list)
    axioms: list[str] = field(default_factory=list)


def final_check(theorem: Theorem, proof: str, env: ProofEnv, policy: CheckPolicy | None = None,
                timeout: float | None = None) -> FinalVerdict:
    """Check `proof` (the text after the statement's `:=`) for `theorem` in a fresh Lean environment."""
    policy = policy or CheckPolicy()
    name = theorem_name(theorem.statement)
    if name is None:
        return FinalVerdict(False, [f"cannot find the theorem name in the statement {theorem.statement[:80]!r}; "
                                    "the final check needs `theorem NAME ... :=`"])
    proof, reasons = _strip_restated_statement(theorem, proof)
    reasons += text_reasons(proof, policy)
    if reasons:  # rejected before spending Lean time on it
        return FinalVerdict(False, reasons)
    source = theorem.statement.rstrip() + " " + proof.strip()
    out = env.check(source, header=theorem.header, timeout=timeout, print_axioms=[name])
    reasons, axioms = lean_reasons(out, name, policy)
    return FinalVerdict(not reasons, reasons, list(out.messages), axioms)


def theorem_name(statement: str) -> str | None:
    """`theorem foo (x : Nat) : ... :=` -> "foo"."""
    match = _NAME_RE.match(strip_comments(statement)[0])
    return match.group(1) if match else None


def _strip_restated_statement(theorem: Theorem, proof: str) -> tuple[str, list[str]]:
    """Whole-proof generators often repeat `theorem ... :=`; accept that only if it is the same statement."""
    code, _ = strip_comments(proof)
    if not re.match(r"\s*(?:theorem|lemma)\b", code):
        return proof, []
    want = _normalize(theorem.statement)
    depth, cut = 0, None
    for i, ch in enumerate(code):  # the first top-level `:=` ends the restated statement
        depth += ch in "([{⦃" and 1 or 0
        depth -= ch in ")]}⦄" and 1 or 0
        if depth == 0 and code.startswith(":=", i):
            cut = i + 2
            break
    if cut is None or _normalize(code[:cut]) != want:
        got = code[:cut].strip() if cut else code.strip()[:200]
        return proof, [f"the proof restates the theorem with a different statement: got {got[:300]!r}, "
                       f"submitted {theorem.statement.strip()[:300]!r}"]
    return code[cut:], []


def _normalize(text: str) -> str:
    return " ".join(strip_comments(text)[0].split())


def text_reasons(proof: str, policy: CheckPolicy) -> list[str]:
    """Reasons to reject the proof text itself, before Lean sees it."""
    code, problem = strip_comments(proof, blank_strings=True)  # a keyword inside a string is just text
    reasons = [problem] if problem else []
    if not code.strip():
        reasons.append("the proof is empty")

    def hits(regex: re.Pattern) -> list[str]:
        return sorted({m.group(0) for m in regex.finditer(code)})

    if found := hits(_SORRY_RE):
        reasons.append(f"the proof uses {', '.join(found)}")
    commands = hits(_COMMANDS_RE) + hits(_HASH_COMMAND_RE) + (["@["] if _ATTRIBUTE_RE.search(code) else [])
    if "axiom" in commands and policy.allow_new_axioms:
        commands.remove("axiom")
    if commands:
        reasons.append(f"the proof contains command keywords {', '.join(commands)}: it could end the theorem "
                       "and declare or change other things (new axioms, macros, #exit)")
    if not policy.allow_native_decide and (found := hits(_NATIVE_RE)):
        reasons.append(f"the proof uses {', '.join(found)}, which trusts compiled code "
                       "(allow with CheckPolicy(allow_native_decide=True))")
    if not policy.allow_implemented_by and (found := hits(_IMPLEMENTED_BY_RE)):
        reasons.append(f"the proof uses {', '.join(found)}, which replaces a definition by code Lean "
                       "does not check (allow with CheckPolicy(allow_implemented_by=True))")
    if not policy.allow_set_option and hits(_SET_OPTION_RE):
        reasons.append("the proof uses set_option, which can weaken checking (e.g. debug.skipKernelTC) "
                       "(allow with CheckPolicy(allow_set_option=True))")
    return reasons


def lean_reasons(out, name: str, policy: CheckPolicy) -> tuple[list[str], list[str]]:
    """Reasons to reject from Lean's own report (`CheckOutput`), and the theorem's axioms."""
    reasons = []
    if out.timed_out:
        reasons.append("Lean timed out while checking the proof")
    if out.crashed:
        reasons.append(f"the Lean process crashed while checking the proof: {out.crashed}")
    for m in out.errors:  # every error counts, also one after a successful-looking message
        where = f" at line {m.line}" if m.line else ""
        reasons.append(f"Lean error{where}: {m.text}")
    for m in out.messages:
        if m.severity == "warning" and re.search(r"declaration uses ['`]sorry['`]", m.text):
            reasons.append(f"Lean warning: {m.text}")
    if out.sorries:
        reasons.append(f"the proof contains {len(out.sorries)} sorry (first goal: {out.sorries[0][:200]!r})")
    key = next((k for k in out.axioms if k == name or k.endswith("." + name)), None)
    if key is None:
        if not out.timed_out and not out.crashed:
            reasons.append(f"`#print axioms {name}` listed nothing: the theorem was not declared as stated "
                           "(did the proof end it early or use #exit?)")
        return reasons, []
    axioms = list(out.axioms[key])
    allowed = set(policy.allowed_axioms) | (set(NATIVE_AXIOMS) if policy.allow_native_decide else set())
    for axiom in axioms:
        if axiom == "sorryAx":
            reasons.append("the theorem depends on sorryAx (a sorry somewhere in its proof)")
        elif axiom in NATIVE_AXIOMS and not policy.allow_native_decide:
            reasons.append(f"the theorem depends on {axiom} (native_decide / compiled code)")
        elif axiom not in allowed and not policy.allow_new_axioms:
            reasons.append(f"the theorem depends on axiom {axiom}, not in the allowed {sorted(allowed)}")
    return reasons, axioms


def strip_comments(text: str, blank_strings: bool = False) -> tuple[str, str | None]:
    """Lean source with comments blanked (strings kept, so `--` in a string stays code).

    `blank_strings` also blanks string contents. Returns (code, problem); problem names an unterminated comment or string, which would
    hide the rest of the text from a reader but not necessarily from Lean.
    """
    out, i, n = [], 0, len(text)
    while i < n:
        if text.startswith("--", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif text.startswith("/-", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/-", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("-/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            if depth:
                return "".join(out), "the proof has an unterminated /- comment that hides the rest of it"
            out.append("".join(c if c == "\n" else " " for c in text[i:j]))
            i = j
        elif text[i] == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            if j >= n:
                return "".join(out), "the proof has an unterminated string literal"
            out.append('"' + " " * (j - i - 1) + '"' if blank_strings else text[i:j + 1])
            i = j + 1
        elif text[i] == "'" and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] in "_'.!?")):
            m = re.match(r"'(\\.|[^\\'])'", text[i:])  # a char literal such as '"'
            step = m.end() if m else 1
            out.append(text[i:i + step])
            i += step
        else:
            out.append(text[i])
            i += 1
    return "".join(out), None


__all__ = ["CheckPolicy", "FinalVerdict", "final_check", "theorem_name", "text_reasons", "lean_reasons",
           "strip_comments"]
