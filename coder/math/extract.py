"""The final answer inside a model response: \\boxed{}, GSM8K `#### N`, "The answer is N", last number."""
from __future__ import annotations

import re

from coder.math.normalize import last_boxed

_HASHES = re.compile(r"####\s*([^\n]+)")
_ANSWER_IS = re.compile(r"\banswers?\b\**\s*(?:is|are|:|=)\s*:?\**\s*([^\n]+)", re.IGNORECASE)
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?(?:/\d+)?|-?\.\d+")


def _tidy(answer: str) -> str:
    answer = answer.strip().strip("*").strip()  # markdown bold around "**42**"
    if answer.startswith("$") and answer.count("$") >= 2:  # "$\frac{1}{2}$, so ...": the math part
        return answer[1:answer.index("$", 1)].strip().strip("$").strip()
    answer = re.split(r"\.(?:\s|$)", answer, maxsplit=1)[0]  # the sentence ends at ". " (not 3.5)
    return answer.strip().strip("*").strip()


def _last_match(pattern: re.Pattern, text: str) -> str | None:
    # Overlapping search: in "Answer: the final answer is 3" the second "answer" is the one wanted.
    last, pos = None, 0
    while (m := pattern.search(text, pos)) is not None:
        last, pos = m.group(1), m.start() + 1
    return last


def extract_answer(text: str) -> str | None:
    """The final answer in `text` (last \\boxed{}, then `#### N`, then "the answer is ...", then the
    last number), as written (not normalized); None when the text holds no answer."""
    if not text:
        return None
    boxed = last_boxed(text)
    if boxed is not None and boxed.strip():
        return boxed.strip()
    for pattern in (_HASHES, _ANSWER_IS):
        found = _last_match(pattern, text)
        if found and _tidy(found):
            return _tidy(found)
    numbers = _NUMBER.findall(text)
    return numbers[-1].rstrip(",") if numbers else None
