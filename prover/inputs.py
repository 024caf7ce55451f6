"""Theorems to prove, from a `.lean` file whose theorems end in `sorry`, or miniF2F-style jsonl."""
from __future__ import annotations

import re
from pathlib import Path

from proofcode_common import iter_jsonl

from .protocol import Theorem

# Lines a header may hold before the first declaration.
_HEADER_LINE = re.compile(r"^\s*(import|open|set_option|universe|variable|namespace|section|--|$)")
_DECL = re.compile(r"^(?:@\[[^\]]*\]\s*)?(?:private\s+|protected\s+)?(theorem|lemma)\s+(\S+)", re.MULTILINE)
_SORRY_END = re.compile(r":=\s*(?:by\s+)?sorry\s*$")
_DOC = re.compile(r"(/--(?:(?!-/).)*-/)\s*$", re.DOTALL)  # the doc comment right before a point


def load_theorems(path: str | Path) -> list[Theorem]:
    """Read theorems from `path` (.lean or .jsonl); errors name the file and line at fault."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such input file (expected a .lean or .jsonl file)")
    if path.suffix == ".lean":
        return _from_lean(path)
    if path.suffix in (".jsonl", ".json"):
        return _from_jsonl(path)
    raise ValueError(f"{path}: unknown input type {path.suffix!r}; give a .lean file or a .jsonl file")


def normalize_statement(formal_statement: str) -> str:
    """`theorem ... := by sorry` / `:= by` / `:= sorry` / `:=`  ->  `theorem ... :=`."""
    text = formal_statement.rstrip()
    for suffix in ("sorry", "by"):
        if text.endswith(suffix) and not text[: -len(suffix)][-1:].isalnum():
            text = text[: -len(suffix)].rstrip()
    if not text.endswith(":="):
        raise ValueError("formal_statement must end with ':=' (optionally followed by 'by' or 'by sorry')")
    return text


def _from_jsonl(path: Path) -> list[Theorem]:
    theorems = []  # names may repeat (ProofNet has 19 pairs); prove_all gives each a unique job id
    for lineno, row in iter_jsonl(path):
        where = f"{path}:{lineno}"
        if not isinstance(row, dict):
            raise ValueError(f"{where}: expected a JSON object with name, header, formal_statement")
        missing = [k for k in ("name", "formal_statement") if not isinstance(row.get(k), str)]
        if missing:
            raise ValueError(f"{where}: missing or non-string field(s) {', '.join(missing)}")
        try:
            statement = normalize_statement(row["formal_statement"])
        except ValueError as exc:
            raise ValueError(f"{where}: {row['name']}: {exc}") from None
        theorems.append(Theorem(row["name"], str(row.get("header") or ""), statement,
                                str(row.get("informal_prefix") or "")))
    if not theorems:
        raise ValueError(f"{path}: no theorems (expected one JSON object per line)")
    return theorems


def _from_lean(path: Path) -> list[Theorem]:
    """Each theorem ending in `sorry` is a job. Its header is the file's leading imports/opens plus
    whatever the file declares before it (defs, proved lemmas, namespaces), so it can use them."""
    text = path.read_text(encoding="utf-8")
    decls = list(_DECL.finditer(text))
    if not decls:
        raise ValueError(f"{path}: no `theorem`/`lemma` declarations found")
    header_end = _header_end(text, decls[0].start())
    header, context = text[:header_end], _without_doc(text[header_end:decls[0].start()])
    theorems: list[Theorem] = []
    for i, match in enumerate(decls):
        segment = text[match.start():decls[i + 1].start() if i + 1 < len(decls) else len(text)]
        decl = _decl_text(segment)
        found = _SORRY_END.search(decl)
        if found:
            doc = _DOC.search(text[header_end:match.start()])
            theorems.append(Theorem(match[2], header + context if context.strip() else header,
                                    decl[: found.start()].rstrip() + " :=", doc[1] + "\n" if doc else ""))
        else:
            context += decl + "\n\n"  # a proved lemma: later theorems may use it
        context += _without_doc(segment[len(decl):])
    if not theorems:
        raise ValueError(f"{path}: no theorem ends in `sorry`; mark the ones to prove with `:= by sorry`")
    return theorems


def _without_doc(text: str) -> str:
    """`text` without a trailing doc comment (it belongs to the next declaration)."""
    return _DOC.sub("", text).lstrip("\n") if text.strip() else ""


def _header_end(text: str, first_decl: int) -> int:
    """Where the leading imports/opens/options stop (the doc comment of a theorem is not header)."""
    end = 0
    for line in text[:first_decl].splitlines(keepends=True):
        if not _HEADER_LINE.match(line):
            break
        end += len(line)
    return end


_NEXT_COMMAND = re.compile(r"^(?:end|namespace|section|open|def|example|instance|abbrev|structure|inductive|"
                           r"class|noncomputable|variable|universe|set_option|attribute|#|@\[|/-|--)", re.MULTILINE)


def _decl_text(chunk: str) -> str:
    """The declaration at the start of `chunk`, without the commands or doc comment that follow it."""
    first_line = chunk.find("\n") + 1
    after = _NEXT_COMMAND.search(chunk, first_line) if first_line else None
    return (chunk[: after.start()] if after else chunk).rstrip()
