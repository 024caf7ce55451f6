"""Tactic/proof generators: a built-in non-learned one, the core model, and any OpenAI-compatible server.

All implement `prover.protocol.Generator`. Prompts follow DeepSeek-Prover: header + informal
prefix + statement + proof so far; tactic prompts put the goal state in a `/- tactic state -/` comment.
"""
from __future__ import annotations

import math
import re
import threading
import time
from pathlib import Path
from typing import Sequence

from pydantic import BaseModel, Field

from .protocol import Proposal, TacticState, Theorem

PROOF_PROMPT = "Complete the following Lean 4 code:\n\n```lean4\n"


class GeneratorConfig(BaseModel):
    """Sampling settings shared by the model and OpenAI generators."""

    temperature: float = Field(1.0, ge=0)
    top_p: float = Field(0.95, gt=0, le=1)
    max_tactic_tokens: int = Field(64, ge=1, description="tokens per proposed tactic")
    max_proof_tokens: int = Field(512, ge=1, description="tokens per proposed whole proof")
    seed: int | None = Field(None, description="fixed seed for reproducible sampling (varied per call)")


class OpenAIConfig(GeneratorConfig):
    """An OpenAI-compatible completions server: `POST {base_url}/v1/completions`."""

    base_url: str = Field(..., description="e.g. http://127.0.0.1:8000 (a trailing /v1 is accepted)")
    model: str = Field("default", description="the `model` field sent with each request")
    api_key: str | None = Field(None, description="sent as `Authorization: Bearer ...` when set")
    timeout: float = Field(120.0, gt=0, description="seconds per HTTP request")
    retries: int = Field(3, ge=0, description="extra attempts on connection errors, 429 and 5xx")
    backoff: float = Field(1.0, ge=0, description="seconds before the first retry; doubles each time")


class GeneratorError(RuntimeError):
    """The generator could not produce proposals (server down, bad answer)."""


def proof_prompt(theorem: Theorem, prefix: str) -> str:
    """Whole-proof prompt: the model continues the Lean file after `prefix` (text after `:=`)."""
    return f"{PROOF_PROMPT}{theorem.header}{theorem.informal_prefix}{theorem.statement} {prefix}"


def tactic_prompt(theorem: Theorem, state: TacticState) -> str:
    """Next-tactic prompt: the goal state as a comment, then the model writes one tactic line."""
    goals = "\n".join("  " + line for line in state.pp.split("\n"))
    return f"{proof_prompt(theorem, 'by')}\n  /- tactic state:\n{goals}\n  -/\n  "


def _best_distinct(candidates: list[Proposal], n: int) -> list[Proposal]:
    """Drop empty and repeated texts (keeping the best log-prob); best first; at most n."""
    best: dict[str, Proposal] = {}
    for p in candidates:
        if p.text.strip() and (p.text not in best or p.logprob > best[p.text].logprob):
            best[p.text] = p
    return sorted(best.values(), key=lambda p: -p.logprob)[:n]


def _first_line(text: str) -> str:
    return text.strip("\n").split("\n")[0].strip()


def _proof_text(text: str) -> str:
    """A sampled proof continuation up to the closing code fence."""
    return text.split("```")[0].rstrip() + "\n"


class _Seeds:
    """Fixed seed -> a different, reproducible seed per call; None stays random."""

    def __init__(self, seed: int | None):
        self.seed, self.calls, self.lock = seed, 0, threading.Lock()

    def next(self) -> int | None:
        if self.seed is None:
            return None
        with self.lock:
            self.calls += 1
            return self.seed + self.calls


class ModelGenerator:
    """Samples tactics/proofs from a `core_model` Transformer (calls are serialized: one model)."""

    def __init__(self, model, tokenizer, config: GeneratorConfig | None = None):
        self.model, self.tokenizer = model, tokenizer
        self.config = config or GeneratorConfig()
        self._seeds = _Seeds(self.config.seed)
        self._lock = threading.Lock()

    @classmethod
    def from_pretrained(cls, path: str | Path, config: GeneratorConfig | None = None) -> "ModelGenerator":
        """Load a checkpoint directory holding config.json, weights and tokenizer.json."""
        from core_model import load_pretrained, load_tokenizer

        return cls(load_pretrained(path), load_tokenizer(path), config)

    def _sample(self, prompt: str, n: int, max_tokens: int, stop: list[str]) -> list[tuple[str, float]]:
        from core_model import GenerationConfig, generate

        cfg = GenerationConfig(max_new_tokens=max_tokens, temperature=self.config.temperature,
                               top_p=self.config.top_p, stop=stop, seed=self._seeds.next())
        with self._lock:
            completions = generate(self.model, self.tokenizer, [prompt] * n, cfg)
        return [(c.text, float(sum(c.logprobs))) for c in completions]

    def propose_tactics(self, theorem: Theorem, state: TacticState, n: int) -> list[Proposal]:
        samples = self._sample(tactic_prompt(theorem, state), n, self.config.max_tactic_tokens, ["\n"])
        return _best_distinct([Proposal(_first_line(t), lp) for t, lp in samples], n)

    def propose_proofs(self, theorem: Theorem, prefix: str, n: int) -> list[Proposal]:
        samples = self._sample(proof_prompt(theorem, prefix), n, self.config.max_proof_tokens, ["```"])
        return [Proposal(_proof_text(t), lp) for t, lp in samples if t.strip()]


class OpenAIGenerator:
    """Samples from an OpenAI-compatible `/v1/completions` endpoint (vLLM, SGLang, llama.cpp ...)."""

    def __init__(self, config: OpenAIConfig):
        import httpx

        self.config = config
        base = config.base_url.rstrip("/")
        self.url = (base[:-3] if base.endswith("/v1") else base) + "/v1/completions"
        headers = {"Authorization": f"Bearer {config.api_key}"} if config.api_key else {}
        self._client = httpx.Client(timeout=config.timeout, headers=headers)
        self._seeds = _Seeds(config.seed)

    def close(self) -> None:
        self._client.close()

    def complete(self, prompt: str, n: int, max_tokens: int, stop: list[str]) -> list[tuple[str, float]]:
        """(text, summed log-prob) for each of the `n` choices; retries per the config."""
        body = {"model": self.config.model, "prompt": prompt, "n": n, "max_tokens": max_tokens,
                "temperature": self.config.temperature, "top_p": self.config.top_p, "logprobs": 1, "stop": stop}
        seed = self._seeds.next()
        if seed is not None:
            body["seed"] = seed
        return _parse_choices(self.url, self._post(body))

    def _post(self, body: dict) -> dict:
        import httpx

        delay, problem = self.config.backoff, ""
        for attempt in range(self.config.retries + 1):
            if attempt:
                time.sleep(delay)
                delay *= 2
            try:
                response = self._client.post(self.url, json=body)
            except httpx.HTTPError as exc:  # connection refused, timeouts, broken connections
                problem = f"{type(exc).__name__}: {exc}"
                continue
            if response.status_code == 429 or response.status_code >= 500:
                problem = f"HTTP {response.status_code}: {response.text[:200]}"
                continue
            if response.status_code >= 400:
                raise GeneratorError(f"{self.url} rejected the request with HTTP {response.status_code}: "
                                     f"{response.text[:300]}")
            try:
                return response.json()
            except ValueError:
                raise GeneratorError(f"{self.url} answered with non-JSON: {response.text[:200]!r}") from None
        raise GeneratorError(f"{self.url}: no answer after {self.config.retries + 1} attempt(s); last: {problem}. "
                             "Is the server running? (--openai-url)")

    def propose_tactics(self, theorem: Theorem, state: TacticState, n: int) -> list[Proposal]:
        samples = self.complete(tactic_prompt(theorem, state), n, self.config.max_tactic_tokens, ["\n"])
        return _best_distinct([Proposal(_first_line(t), lp) for t, lp in samples], n)

    def propose_proofs(self, theorem: Theorem, prefix: str, n: int) -> list[Proposal]:
        samples = self.complete(proof_prompt(theorem, prefix), n, self.config.max_proof_tokens, ["```"])
        return [Proposal(_proof_text(t), lp) for t, lp in samples if t.strip()]


def _parse_choices(url: str, payload: dict) -> list[tuple[str, float]]:
    choices = payload.get("choices") if isinstance(payload, dict) else None
    if not isinstance(choices, list):
        raise GeneratorError(f"{url} answered without a `choices` list: {str(payload)[:200]}")
    out = []
    for choice in choices:
        text = choice.get("text")
        if not isinstance(text, str):
            raise GeneratorError(f"{url} answered a choice without `text`: {str(choice)[:200]}")
        token_logprobs = ((choice.get("logprobs") or {}).get("token_logprobs")) or []
        out.append((text, float(sum(lp for lp in token_logprobs if lp is not None))))
    return out


# ---- the built-in, non-learned generator ---------------------------------------------------

CORE_CLOSERS = ("rfl", "simp", "omega", "decide", "trivial", "assumption", "simp_all", "contradiction")
# With Mathlib: the strong arithmetic closers interleaved with the core ones, likeliest first.
MATHLIB_CLOSERS = ("rfl", "norm_num", "simp", "linarith", "omega", "nlinarith", "aesop", "positivity", "ring",
                   "decide", "field_simp", "tauto", "trivial", "assumption", "simp_all", "contradiction")
_NAT_TYPES = ("ℕ", "Nat")  # structural induction; on ℤ it would only split the two constructors


def _imports(header: str, module: str) -> bool:
    return re.search(rf"^\s*import\s+.*\b{module}\b", header, re.MULTILINE) is not None


def split_goal(pp: str) -> tuple[list[tuple[str, str]], str]:
    """The first goal of a pretty-printed state: ([(names, type) of hypotheses], target)."""
    first = pp.split("\n\n")[0]
    hyps, target, lines = [], "", first.split("\n")
    for i, line in enumerate(lines):
        if line.startswith("⊢"):
            target = " ".join([line[1:].strip()] + [rest.strip() for rest in lines[i + 1:]])
            break
        if " : " in line and not line.startswith(" "):
            names, typ = line.split(" : ", 1)
            hyps.append((names.strip(), typ.strip()))
        elif hyps:  # a long hypothesis wrapped onto the next line
            hyps[-1] = (hyps[-1][0], hyps[-1][1] + " " + line.strip())
    return hyps, target


def structural_tactics(pp: str) -> list[str]:
    """Goal-directed steps: intro for ∀/→/¬, constructor for ∧/↔, case splits, induction on ℕ/ℤ vars."""
    hyps, target = split_goal(pp)
    steps = []
    binder = re.match(r"∀\s*\(?\s*([^,:()]+?)\s*[,:]", target)
    if binder:
        steps.append("intro " + " ".join(n for n in binder[1].split() if n.isidentifier() or n[0].isalpha()))
    elif target.startswith("¬") or _top_level(target, "→"):
        steps.append("intro h")
    elif _top_level(target, "∧") or _top_level(target, "↔"):  # `→`/`∀` bind looser: intro first
        steps.append("constructor")
    elif target.startswith("∃"):
        steps.append("refine ⟨?_, ?_⟩")
    for names, typ in hyps:
        for name in names.split():
            if _top_level(typ, "∧"):
                steps.append(f"obtain ⟨{name}_left, {name}_right⟩ := {name}")
            elif _top_level(typ, "∨"):
                steps.append(f"rcases {name} with {name} | {name}")
            elif typ in _NAT_TYPES and re.search(rf"(?<![\w.']){re.escape(name)}(?![\w'])", target):
                steps.append(f"induction {name}")
    return steps


def _top_level(text: str, op: str) -> bool:
    depth = 0
    for i, ch in enumerate(text):
        depth += (ch in "([{⟨") - (ch in ")]}⟩")
        if depth == 0 and text.startswith(op, i):
            return True
    return False


class BuiltinGenerator:
    """Proposals without a model: goal-derived steps, then closing tactics the header makes available.

    Mathlib tactics (norm_num, linarith, ...) only when the header imports Mathlib; `aesop` when
    it imports Mathlib or Aesop. Log-probs are a fixed prior: earlier in the list is likelier.
    """

    def __init__(self, extra_tactics: Sequence[str] = ()):
        self.extra = list(extra_tactics)
        self._rounds: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()

    def closers(self, header: str) -> list[str]:
        """The closing tactics usable under `header`."""
        if _imports(header, "Mathlib"):
            tactics = list(MATHLIB_CLOSERS)
        else:
            tactics = list(CORE_CLOSERS) + (["aesop"] if _imports(header, "Aesop") else [])
        return tactics + self.extra

    def propose_tactics(self, theorem: Theorem, state: TacticState, n: int) -> list[Proposal]:
        texts = list(dict.fromkeys(structural_tactics(state.pp) + self.closers(theorem.header)))
        return [Proposal(t, _prior(rank)) for rank, t in enumerate(texts[:n])]

    def propose_proofs(self, theorem: Theorem, prefix: str, n: int) -> list[Proposal]:
        """Whole-proof candidates: each closer, alone and after `intros`; successive calls move on."""
        closers = self.closers(theorem.header)
        proofs = [f"  {c}\n" for c in closers] + [f"  intros\n  {c}\n" for c in closers]
        with self._lock:  # the same prefix asked again gets the next n candidates
            key = (theorem.name, prefix)
            start = self._rounds.get(key, 0)
            self._rounds[key] = start + n
        picked = [proofs[(start + i) % len(proofs)] for i in range(min(n, len(proofs)))]
        return [Proposal(p, _prior((start + i) % len(proofs))) for i, p in enumerate(picked)]


def _prior(rank: int) -> float:
    """A fixed, decreasing log-probability by rank (a geometric prior)."""
    return math.log(0.5) * (rank + 1)
