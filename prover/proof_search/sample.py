"""Whole-proof sampling with truncate-and-resume (DeepSeek-Prover-V1.5).

Sample complete proofs; check each; cut a failed one at its first error; resume generation
from the longest valid prefix, with the Lean tactic state at the cut written as a comment.
"""
from __future__ import annotations

from ..protocol import CheckOutput, Generator, ProofEnv, Theorem
from .config import Budget, SearchConfig, SearchResult, Verifier, proof_source

ROOT_PREFIX = "by\n"


def sample_search(theorem: Theorem, env: ProofEnv, generator: Generator, config: SearchConfig,
                  budget: Budget, verifier: Verifier) -> SearchResult:
    """Sample up to `max_samples` proofs, `samples_per_round` at a time from the current prefix."""
    kept: list[str] = []  # tactic lines of the current valid prefix (no state comments)
    prefix, stale = ROOT_PREFIX, 0
    while budget.samples < config.max_samples and not budget.out_of_time():
        n = min(config.samples_per_round, config.max_samples - budget.samples)
        proposals = generator.propose_proofs(theorem, prefix, n)
        budget.samples += max(1, len(proposals))  # an empty answer still spends a sample
        longest: list[str] | None = None
        for proposal in proposals:
            if budget.out_of_time():
                break
            proof = prefix + proposal.text
            out = _check(theorem, env, proof, config, budget)
            if not out.errors and not out.sorries and not out.timed_out and out.crashed is None:
                if verifier.accept(proof.rstrip()):
                    return verifier.proved(proof.rstrip())
                continue
            cut = valid_lines(theorem, proof, out) if config.resume else None
            if cut is not None and len(cut) > len(kept) and (longest is None or len(cut) > len(longest)):
                longest = cut
        resumed = _resume_prefix(theorem, env, longest, config, budget) if longest else None
        if resumed:
            kept, prefix, stale = longest, resumed, 0
        elif kept and (stale := stale + 1) >= config.resume_patience:
            kept, prefix, stale = [], ROOT_PREFIX, 0  # this prefix looks like a dead end
    return verifier.unproved()


def _check(theorem: Theorem, env: ProofEnv, proof: str, config: SearchConfig, budget: Budget) -> CheckOutput:
    budget.lean_calls += 1
    return env.check(proof_source(theorem, proof), header=theorem.header,
                     timeout=budget.timeout(config.check_timeout))


def valid_lines(theorem: Theorem, proof: str, out: CheckOutput) -> list[str] | None:
    """The proof's tactic lines before its first error (all of them if only goals were left open).

    Line numbers are 1-based lines of `statement + " " + proof`, as `ProofEnv.check` reports them.
    """
    errors = [m for m in out.errors if m.line is not None]
    tactic_errors = [m for m in errors if not m.text.startswith("unsolved goals")]
    if not errors:
        return None
    lines = proof.split("\n")
    by_line = theorem.statement.count("\n") + 1  # the proof's first line shares the statement's last
    if tactic_errors:
        end = min(m.line for m in tactic_errors) - by_line
    else:
        end = len(lines)  # every tactic ran; the proof just stopped early
    return tactic_lines(lines[1:max(1, end)])


def tactic_lines(lines: list[str]) -> list[str]:
    """The non-blank lines outside `--` and `/- -/` comments."""
    kept, in_comment = [], False
    for line in lines:
        text = line.strip()
        if in_comment:
            in_comment = "-/" not in text
        elif text.startswith("/-"):
            in_comment = "-/" not in text[2:]
        elif text and not text.startswith("--"):
            kept.append(line)
    return kept


def _resume_prefix(theorem: Theorem, env: ProofEnv, kept: list[str], config: SearchConfig,
                   budget: Budget) -> str | None:
    """`by` + kept lines + the tactic state there as a comment; None if the cut is not valid Lean."""
    indent = kept[0][: len(kept[0]) - len(kept[0].lstrip())] or "  "
    body = "".join(line + "\n" for line in kept)
    # Lean reports the goal at a `sorry`: that is the tactic state after the kept lines.
    out = _check(theorem, env, ROOT_PREFIX + body + indent + "sorry", config, budget)
    if out.errors or len(out.sorries) != 1:
        return None
    state = "\n".join(indent + line for line in out.sorries[0].split("\n"))
    return f"{ROOT_PREFIX}{body}{indent}/- tactic state:\n{state}\n{indent}-/\n"
