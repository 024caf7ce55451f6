"""Stdlib-only helpers every proofcode package shares (it imports no other proofcode package).

    for lineno, row in iter_jsonl(path): ...           # ValueError "PATH:LINE: not valid JSON (...)"
    __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())   # a package's lazy public names
    return report_ungraded(n_ungraded, n_rows, "sample")                # exit 3 and one line when items lacked a verdict
"""
from __future__ import annotations

import importlib
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the sandbox's fork server imports this module: it stays as small as the stdlib's importlib
    from pathlib import Path
    from typing import Any, Callable, Iterator


def iter_jsonl(path: str | Path) -> Iterator[tuple[int, Any]]:
    """(line number, value) for each non-blank line of a .jsonl (or .jsonl.gz) file; bad JSON names PATH:LINE."""
    import gzip
    import json
    from pathlib import Path

    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                yield lineno, json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{lineno}: not valid JSON ({exc.msg} at column {exc.colno})") from None


def lazy_exports(package: str, exports: dict[str, str], namespace: dict) -> tuple[Callable, Callable]:
    """A package's module `__getattr__` and `__dir__`: each public name is imported from its module on first use.

    Lazy, so `import PKG` stays cheap and each part loads only what it uses.
    """

    def __getattr__(name: str):
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module, package), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(list(namespace) + list(exports))

    return __getattr__, __dir__


UNGRADED_EXIT = 3  # the job finished, but some items have no verdict: their worker died on every attempt


def report_ungraded(ungraded: int, total: int, what: str) -> int:
    """0, or UNGRADED_EXIT after one line on stderr saying how many items got no verdict and why."""
    if not ungraded:
        return 0
    print(f"warning: {ungraded} of {total} {what}(s) were NOT graded: their worker died every time it ran them "
          "(rows with \"ungraded\": true; see their detail); the scores above count them as failures",
          file=sys.stderr)
    return UNGRADED_EXIT


__all__ = ["iter_jsonl", "lazy_exports", "report_ungraded", "UNGRADED_EXIT"]
