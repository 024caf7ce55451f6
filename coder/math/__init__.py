"""Math answer checking: `check_answer(predicted, reference)` and `extract_answer(response)`.

Exports are lazy so the checker worker process (coder.math.worker) imports only what it uses.
"""
from __future__ import annotations

_EXPORTS = {
    "check_answer": ".answer",
    "extract_answer": ".answer",
    "AnswerVerdict": ".answer",
    "AnswerParseError": ".answer",
    "AnswerPolicy": ".policy",
}


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_EXPORTS))


__all__ = sorted(_EXPORTS)
