"""Proof search: best-first over tactic states, whole-proof sampling with truncate-and-resume, RMaxTS.

    result = search(theorem, env, generator, SearchConfig(algorithm="best_first"))
Every proof a search reports as proved has passed `prover.final_check`.
"""
from __future__ import annotations

from ..protocol import EnvError, Generator, ProofEnv, Theorem
from .config import Budget, SearchConfig, SearchResult, Verifier, proof_source, tactics_to_proof

__all__ = ["search", "SearchConfig", "SearchResult", "tactics_to_proof", "proof_source"]


def search(theorem: Theorem, env: ProofEnv, generator: Generator, config: SearchConfig | None = None,
           policy=None) -> SearchResult:
    """Search for a proof of `theorem` in `env` within the config's budgets.

    `policy` is the final check's `CheckPolicy` (default: its strict defaults). `EnvError`
    propagates (the environment itself is broken); other failures of one theorem are
    returned as status "error". The proof states it opened are released when it returns.
    """
    from .best_first import best_first
    from .mcts import mcts
    from .sample import sample_search

    config = config or SearchConfig()
    algorithm = {"best_first": best_first, "sample": sample_search, "mcts": mcts}[config.algorithm]
    budget = Budget(config)
    verifier = Verifier(theorem, env, budget, policy)
    try:
        return algorithm(theorem, env, generator, config, budget, verifier)
    except EnvError:
        raise
    except Exception as exc:  # a generator or backend failure ends this theorem, not the run
        return verifier.unproved(error=f"{type(exc).__name__}: {exc}")
    finally:
        # A long-lived environment keeps only the proofs still searched; a user's env written before
        # `release` joined the protocol keeps its states, as it always did.
        release = getattr(env, "release", None)
        for root in budget.opened if release is not None else ():
            release(root)
