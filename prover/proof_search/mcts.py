"""Monte-Carlo tree search over tactic states with the RMaxTS novelty bonus (DeepSeek-Prover-V1.5).

One expansion tries one proposed tactic at a selected node. Its reward is 1 when it adds a
tactic state not seen before in this search (intrinsic, RMaxTS) and 0 otherwise; a verified
proof ends the search. Rewards are non-stationary, so statistics use discounted UCB: each
time a parent is visited all its children's counts decay by `discount`. `parallel` leaves are
selected per round; virtual loss on their paths keeps the selections apart.
"""
from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from ..protocol import Generator, ProofEnv, ProofFinished, Proposal, TacticResult, TacticState, Theorem
from .config import Budget, SearchConfig, SearchResult, Verifier, open_theorem, tactics_to_proof


@dataclass(eq=False)
class _Node:
    state: TacticState
    tactics: tuple[str, ...]
    parent: "_Node | None" = None
    children: list["_Node"] = field(default_factory=list)
    proposals: list[Proposal] | None = None  # generated on first selection
    tried: int = 0
    pending: int = 0  # expansions in flight
    visits: float = 0.0  # discounted visit count
    value: float = 0.0  # discounted reward sum
    virtual: float = 0.0
    dead: bool = False


class _Tree:
    def __init__(self, theorem: Theorem, generator: Generator, config: SearchConfig, root: _Node):
        self.theorem, self.generator, self.config, self.root = theorem, generator, config, root
        self.seen = {root.state.pp}

    def select(self) -> tuple[_Node, Proposal] | None:
        """Descend by UCB to a node with an untried tactic; None when nothing is selectable now."""
        while not self.root.dead:
            node = self.root
            while True:
                if node.proposals is None:
                    deep = len(node.tactics) >= self.config.max_depth
                    node.proposals = [] if deep else self.generator.propose_tactics(
                        self.theorem, node.state, self.config.num_candidates)
                if node.tried < len(node.proposals):
                    node.tried += 1
                    return node, node.proposals[node.tried - 1]
                live = [c for c in node.children if not c.dead]
                if not live:
                    if node.pending:
                        return None  # a result for this node is still coming
                    node.dead = True  # exhausted: never select it again
                    break
                node = max(live, key=lambda c: self._ucb(c, live))
        return None

    def _ucb(self, child: _Node, siblings: list[_Node]) -> float:
        n = child.visits + child.virtual
        total = sum(s.visits + s.virtual for s in siblings)
        return child.value / n + self.config.exploration * math.sqrt(2 * math.log(total + 1) / n)

    def mark(self, node: _Node, amount: float) -> None:
        """Add (or remove) virtual loss along the path to `node`."""
        while node is not None:
            node.virtual += amount
            node = node.parent

    def backup(self, node: _Node, reward: float) -> None:
        """Discounted-UCB update of every edge from the root to `node`."""
        gamma = self.config.discount
        while node.parent is not None:
            for sibling in node.parent.children:
                sibling.visits *= gamma
                sibling.value *= gamma
            node.visits += 1
            node.value += reward
            node = node.parent


def mcts(theorem: Theorem, env: ProofEnv, generator: Generator, config: SearchConfig,
         budget: Budget, verifier: Verifier) -> SearchResult:
    """RMaxTS: UCB tree search whose reward is the discovery of new tactic states."""
    start = open_theorem(theorem, env, config, budget, verifier)
    if isinstance(start, SearchResult):
        return start
    tree = _Tree(theorem, generator, config, _Node(start, ()))
    with ThreadPoolExecutor(max_workers=config.parallel) as pool:
        while budget.expansions < config.max_expansions and not budget.out_of_time():
            batch = []
            while len(batch) < min(config.parallel, config.max_expansions - budget.expansions):
                picked = tree.select()
                if picked is None:
                    break
                picked[0].pending += 1
                tree.mark(picked[0], config.virtual_loss)
                batch.append(picked)
            if not batch:
                break  # the whole tree is exhausted
            budget.expansions += len(batch)
            budget.lean_calls += len(batch)
            outcomes = list(pool.map(lambda p: env.run_tactic(
                p[0].state, p[1].text, timeout=budget.timeout(config.tactic_timeout)), batch))
            for (node, proposal), outcome in zip(batch, outcomes):
                node.pending -= 1
                tree.mark(node, -config.virtual_loss)
                proof = _record(tree, node, proposal, outcome, verifier)
                if proof is not None:
                    return verifier.proved(proof, list(node.tactics) + [proposal.text])
    return verifier.unproved()


def _record(tree: _Tree, node: _Node, proposal: Proposal, outcome: TacticResult, verifier: Verifier) -> str | None:
    """Add the outcome to the tree and back up its reward; the proof if it closed the goal."""
    tactics = node.tactics + (proposal.text,)
    if isinstance(outcome, ProofFinished):
        proof = tactics_to_proof(tactics)
        if verifier.accept(proof):
            return proof
        tree.backup(node, 0.0)
    elif isinstance(outcome, TacticState) and outcome.pp not in tree.seen:
        tree.seen.add(outcome.pp)
        reward = 1.0 if tree.config.novelty_bonus else 0.0
        child = _Node(outcome, tactics, parent=node, visits=1.0, value=reward)
        node.children.append(child)
        tree.backup(node, reward)
    else:
        tree.backup(node, 0.0)
    return None
