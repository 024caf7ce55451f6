"""The final answer inside a model response (rules in docs/coder.md, "Extraction").

In order: the last \\boxed{} group (unless a final-answer sentence follows it), GSM8K `#### N`,
"the (final) answer is X", then the last answer-shaped part: the final math segment
(`$..$`, `$$..$$`, `\\(..\\)`, `\\[..\\]`) or the last standalone number, whichever comes later.
A number glued to letters (`AZYUK2A`) is not answer-shaped; text without any gives None.
"""
from __future__ import annotations

import re

from coder.math.boxed import last_boxed_group

_HASHES = re.compile(r"####\s*([^\n]+)")
_ANSWER_IS = re.compile(r"\banswers?\b\**\s*(?:is|are|:|=)\s*:?\**\s*([^\n]+)", re.IGNORECASE)
# Display math may span lines; inline math may not ("$ \n 9 \n $" is not an answer).
_SEGMENT = re.compile(r"\$\$(.+?)\$\$|\\\[(.+?)\\\]|\\\((.+?)\\\)|(?<!\\)\$((?:\\\$|[^$])+?)(?<!\\)\$", re.S)
_NUMBER = re.compile(r"(?<![\w.,/\\^])[-+]?(?:\d{1,3}(?:,\d{3})+|\d{1,3}(?: \d{3})+(?!\d)|\d+|(?=\.\d))(?:[.,]\d+)?(?:/\d+)?(?:\s*(?:%|percent\b))?"
                     r"(?![\d^_{])")
_SENTENCE_END = re.compile(r"\.(?:\s|$)|\s+I hope\b|<\|", re.IGNORECASE)
_VERB = re.compile(r"\s(?:is|are|equals?|was|be)\s|=", re.IGNORECASE)
_JOIN = re.compile(r"\s*(?:,\s*and|,|and|or)\s*", re.IGNORECASE)
_WORD = re.compile(r"[A-Za-z]{3,}")
_COMMAND = re.compile(r"\\[A-Za-z]+")
_BARE_MAX_CHARS = 200


def math_segments(text: str) -> list[tuple[int, int, str]]:
    """(start, end, content) of each valid math segment; inline ones broken by a newline are skipped."""
    out = []
    for m in _SEGMENT.finditer(text):
        inline = m.group(3) if m.group(3) is not None else m.group(4)
        if inline is not None and "\n" in inline:
            continue
        content = next(g for g in m.groups() if g is not None)
        out.append((m.start(), m.end(), content.strip()))
    return out


def _outside_math(text: str) -> str:
    """`text` with every $..$ / \\(..\\) span (valid or not) blanked out, positions kept."""
    return _SEGMENT.sub(lambda m: " " * len(m.group(0)), text)


def _last_number(text: str) -> tuple[int, str] | None:
    found = [m for m in _NUMBER.finditer(_outside_math(text)) if m.group(0).strip()]
    return (found[-1].end(), found[-1].group(0).strip()) if found else None


def _is_prose(s: str) -> bool:
    words = [w for w in _WORD.findall(_outside_math(s)) if w.lower() not in {"and", "or"}]
    return len(words) >= 2 or bool(words and len(s.split()) >= 3)


def _bare_answer(text: str) -> str | None:
    """The whole text when it is itself an answer (`\\frac{10}{9}`, `x = 2+3 = 5`, `19, 46 and 82`):
    one short line without `$`, prose words, a digit glued after letters (`AZYUK2A`, `x2`) or after a closing
    bracket (`[7+8=15,4+3+1=8]85` is working followed by an answer, not one answer)."""
    s = text.strip()
    if "\n" in s or "$" in s or len(s) > _BARE_MAX_CHARS:
        return None
    plain = _COMMAND.sub(" ", s)  # \frac, \sqrt, \pi are math, not words
    if re.search(r"[A-Za-z\])]\d", plain) or any(w.lower() not in {"and", "or"} for w in _WORD.findall(plain)):
        return None
    return s


def _joined_tail(text: str, segments: list[tuple[int, int, str]]) -> str:
    """The last math segment, with the ones before it joined by "and"/"or"/"," (`$1$, $2$ and $3$`)."""
    k = len(segments) - 1
    while k > 0 and _JOIN.fullmatch(text[segments[k - 1][1]:segments[k][0]]):
        k -= 1
    return ", ".join(c for _, _, c in segments[k:] if c)


def _leading_math(rest: str) -> str | None:
    """"$a$", "$12 $ and $13 $", "\\(x\\)": the math at the start of `rest`, several joined by ", "."""
    parts, pos = [], 0
    for start, end, content in math_segments(rest):
        gap = rest[pos:start]
        if parts and not _JOIN.fullmatch(gap) or not parts and gap.strip():
            break
        parts.append(content)
        pos = end
    return ", ".join(p for p in parts if p) or None


def _tidy(s: str) -> str:
    s = s.strip().strip("*\"'\u201c\u201d").strip()
    return re.sub(r"[\s,;:]+$", "", s).strip()


def phrase_answer(rest: str) -> str | None:
    """The answer in what follows "the answer is" / "Final Answer:" (None when it holds none)."""
    rest = re.sub(r"^(?:\\?[\"'\u201c]|\*+|\s)+", "", rest)  # **bold**, quotes, an escaped quote \\"
    math = _leading_math(rest)
    if math:
        return math
    sentence = _tidy(_SENTENCE_END.split(rest, maxsplit=1)[0])
    if not sentence or not _is_prose(sentence):
        return sentence or None
    # "The largest $n$ is 34", "the number of ways is $\frac{1}{2}$": what follows the last verb
    verbs = list(_VERB.finditer(sentence))
    if verbs:
        return phrase_answer(sentence[verbs[-1].end():])
    # "Jane started growing Sphere 3 hours ago": the one number or math segment in the sentence
    segments = math_segments(sentence)
    numbers = [n for n in _NUMBER.findall(_outside_math(sentence)) if n.strip()]
    if len(segments) + len(numbers) == 1:
        return segments[0][2] if segments else numbers[0].strip()
    return None


def _last_phrase(pattern: re.Pattern, text: str) -> tuple[int, str] | None:
    # Overlapping search: in "Answer: the final answer is 3" the second "answer" is the one wanted.
    last, pos = None, 0
    while (m := pattern.search(text, pos)) is not None:
        answer = phrase_answer(m.group(1))
        if answer:
            last = (m.start(), answer)
        pos = m.start() + 1
    return last


def extract_answer(text: str) -> str | None:
    """The final answer in `text`, as written (not normalized); None when the text holds no answer."""
    if not text or not str(text).strip():
        return None
    text = str(text)
    boxed = last_boxed_group(text)
    for pattern in (_HASHES, _ANSWER_IS):
        found = _last_phrase(pattern, text)
        if found and (boxed is None or found[0] > boxed[1]):
            return found[1]
    if boxed is not None:
        return boxed[0]
    bare = _bare_answer(text)
    if bare:
        return bare
    segments = math_segments(text)
    number = _last_number(text)
    if segments and (number is None or segments[-1][1] > number[0]) and segments[-1][2]:
        return _joined_tail(text, segments)
    return number[1] if number else None
