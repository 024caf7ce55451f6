"""The final answer inside a model response: \\boxed{}, GSM8K `#### N`, "The answer is N", last number."""
from __future__ import annotations

import re

from coder.math_normalize import last_boxed

_HASHES = re.compile(r"####\s*([^\n]+)")
_ANSWER_IS = re.compile(r"(?:final answer|the answer|answer)\s*(?:is|:|=)\s*:?\s*([^\n]+)", re.IGNORECASE)
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?(?:/\d+)?|-?\.\d+")


def _tidy(answer: str) -> str:
    answer = answer.strip().strip("*").strip()  # markdown bold around "**42**"
    answer = re.sub(r"[.\s]+$", "", answer)  # the sentence's full stop, not a decimal point
    if answer.startswith("$") and answer.endswith("$") and answer.count("$") == 2:
        answer = answer[1:-1].strip()
    return answer


def extract_answer(text: str) -> str | None:
    """The final answer in `text` (last \\boxed{}, then `#### N`, then "the answer is ...", then the
    last number), as written (not normalized); None when the text holds no answer."""
    if not text:
        return None
    boxed = last_boxed(text)
    if boxed is not None and boxed.strip():
        return boxed.strip()
    for pattern in (_HASHES, _ANSWER_IS):
        matches = pattern.findall(text)
        if matches and _tidy(matches[-1]):
            return _tidy(matches[-1])
    numbers = _NUMBER.findall(text)
    return numbers[-1].rstrip(",") if numbers else None
