"""Lean 4 proof environments (pooled REPL, LeanDojo), proof search, and a strict final check.

Public API:
    env = ReplEnv(ReplConfig(project="path/to/lean/project"))   # a ProofEnv
    result = search(theorem, env, generator, SearchConfig(...))   # -> SearchResult
    verdict = final_check(theorem, proof, env)                    # -> FinalVerdict
"""
from __future__ import annotations

from .protocol import (  # noqa: F401  (the seams are always importable, no Lean needed)
    CheckOutput,
    EnvError,
    Generator,
    LeanMessage,
    ProofEnv,
    ProofFinished,
    Proposal,
    TacticError,
    TacticResult,
    TacticState,
    Theorem,
)

_EXPORTS = {
    "ReplConfig": ".repl",
    "ReplEnv": ".repl",
    "DojoEnv": ".dojo",
    "final_check": ".verification",
    "CheckPolicy": ".verification",
    "FinalVerdict": ".verification",
    "search": ".proof_search",
    "SearchConfig": ".proof_search",
    "SearchResult": ".proof_search",
    "BuiltinGenerator": ".generators",
    "ModelGenerator": ".generators",
    "OpenAIGenerator": ".generators",
    "load_theorems": ".inputs",
    "normalize_statement": ".inputs",
    "ProveConfig": ".run",
    "prove_all": ".run",
}


def __getattr__(name: str):
    # Lazy: `import PKG` stays cheap and the parts load only what they use.
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_EXPORTS))


__all__ = sorted(_EXPORTS) + ["CheckOutput", "EnvError", "Generator", "LeanMessage", "ProofEnv", "ProofFinished", "Proposal", "TacticError", "TacticResult", "TacticState", "Theorem"]
