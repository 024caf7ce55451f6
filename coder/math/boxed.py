"""\\boxed{} answers in a response: every box, and the last group of boxes that together form one answer."""
from __future__ import annotations

import re

_BOX = re.compile(r"\\(?:boxed|fbox)(?![a-zA-Z])\s*")
# Text between two boxes that joins them into one list answer: nothing, or text ending in "and" or a
# comma ("\boxed{1} and \boxed{2}", "\boxed{2}, \boxed{3}", "\boxed{1} and y = \boxed{2}"); at most
# this long. "\boxed{1}, then corrected: \boxed{2}" is a correction, not a list.
_JOIN_GAP_CHARS = 80
_JOINER = re.compile(r"(?:,|\band)\s*(?:[A-Za-z](?:_\{?\w+\}?)?\s*=)?\s*$", re.IGNORECASE)
_GAP_NOISE = re.compile(r"\\[()\[\]]|\\q?quad|\\text\s*\{|[{}]|\\[,;!]")


def boxed_spans(text: str) -> list[tuple[int, int, str]]:
    """(start, end, content) of each top-level \\boxed{...} / \\fbox{...} / `\\boxed 5`, in order."""
    spans: list[tuple[int, int, str]] = []
    pos = 0
    while (m := _BOX.search(text, pos)) is not None:
        i = m.end()
        if i >= len(text):
            break
        if text[i] != "{":  # "\boxed 5": up to the next space or "$"
            token = re.match(r"[^\s$]*", text[i:]).group(0)
            end = i + len(token)
            if token:
                spans.append((m.start(), end, token))
            pos = max(end, i + 1)
            continue
        depth, end = 0, None
        for j in range(i, len(text)):
            if text[j] == "{" and text[j - 1] != "\\":
                depth += 1
            elif text[j] == "}" and text[j - 1] != "\\":
                depth -= 1
                if depth == 0:
                    end = j + 1
                    break
        if end is None:  # unbalanced: the rest of the text is not a usable box
            break
        spans.append((m.start(), end, text[i + 1:end - 1]))
        pos = end
    return spans


def _joins(gap: str) -> bool:
    if len(gap) > _JOIN_GAP_CHARS or "\n\n" in gap:
        return False
    gap = _GAP_NOISE.sub(" ", gap).strip()
    if gap and not gap.replace("$", "").strip():  # "$$\boxed{20}$$ \boxed{143}": separate formulas
        return False
    return not gap or bool(_JOINER.search(gap.replace("$", " ")))


def last_boxed_group(text: str) -> tuple[str, int] | None:
    """The last boxed answer, with the boxes just before it joined by ", " when the text between them
    only says "and" or "," (a list answer written as several boxes); and where that group ends."""
    spans = [s for s in boxed_spans(text) if s[2].strip()]
    if not spans:
        return None
    group = [spans[-1]]
    for prev in reversed(spans[:-1]):
        if not _joins(text[prev[1]:group[0][0]]):
            break
        group.insert(0, prev)
    return ", ".join(s[2].strip() for s in group), spans[-1][1]
