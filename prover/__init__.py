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


from proofcode_common import lazy_exports  # noqa: E402

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())


__all__ = sorted(_EXPORTS) + ["CheckOutput", "EnvError", "Generator", "LeanMessage", "ProofEnv", "ProofFinished", "Proposal", "TacticError", "TacticResult", "TacticState", "Theorem"]
