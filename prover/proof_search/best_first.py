"""Best-first search over tactic states, scored by cumulative log-probability (ReProver style)."""
from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass

from ..protocol import Generator, ProofEnv, ProofFinished, TacticState, Theorem
from .config import Budget, SearchConfig, SearchResult, Verifier, open_theorem, tactics_to_proof


@dataclass
class _Node:
    state: TacticState
    tactics: tuple[str, ...]
    score: float  # sum of the generator's log-probabilities along the path


def best_first(theorem: Theorem, env: ProofEnv, generator: Generator, config: SearchConfig,
               budget: Budget, verifier: Verifier) -> SearchResult:
    """Expand the open state with the highest cumulative log-prob; `num_candidates` tactics each."""
    root = open_theorem(theorem, env, config, budget, verifier)
    if isinstance(root, SearchResult):
        return root
    order = itertools.count()  # ties: first pushed first, so the search is deterministic
    frontier = [(-0.0, next(order), _Node(root, (), 0.0))]
    seen = {root.pp}  # states with the same pretty-printed goals are the same search node
    while frontier and budget.expansions < config.max_expansions and not budget.out_of_time():
        _, _, node = heapq.heappop(frontier)
        budget.expansions += 1
        for proposal in generator.propose_tactics(theorem, node.state, config.num_candidates):
            if budget.out_of_time():
                break
            budget.lean_calls += 1
            outcome = env.run_tactic(node.state, proposal.text, timeout=budget.timeout(config.tactic_timeout))
            tactics = node.tactics + (proposal.text,)
            if isinstance(outcome, ProofFinished):
                proof = tactics_to_proof(tactics)
                if verifier.accept(proof):
                    return verifier.proved(proof, list(tactics))
            elif isinstance(outcome, TacticState) and outcome.pp not in seen and len(tactics) < config.max_depth:
                seen.add(outcome.pp)
                child = _Node(outcome, tactics, node.score + proposal.logprob)
                heapq.heappush(frontier, (-child.score, next(order), child))
    return verifier.unproved()
