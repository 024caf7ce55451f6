"""Generation backends: the built-in core model, or any OpenAI-compatible completions endpoint.

Both take a list of prompts and one `SamplingParams` and return one dict per prompt:
{"text", "finish_reason", "prompt_tokens", "completion_tokens"} (+ "logprobs" when known).
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional, Protocol

from pydantic import BaseModel, ConfigDict, Field

from .config import BackendConfig


class SamplingParams(BaseModel):
    """The knobs every backend understands (OpenAI completions names)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_tokens: int = Field(64, ge=1, le=32768)
    temperature: float = Field(0.0, ge=0.0, le=5.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    top_k: int = Field(0, ge=0)
    stop: tuple[str, ...] = ()
    seed: Optional[int] = None


class GenerationBackend(Protocol):
    def complete(self, prompts: list[str], params: SamplingParams) -> list[dict]:
        """One completion dict per prompt, in order."""


def resolve_checkpoint(checkpoint: str | None) -> Path:
    """The checkpoint dir to load: the configured one, else the embedded tiny model."""
    if checkpoint:
        path = Path(checkpoint)
    else:
        import core_model

        path = Path(core_model.EMBEDDED_TINY_PATH)
    if not (path / "config.json").is_file():
        what = "the embedded tiny model" if not checkpoint else "checkpoint"
        raise FileNotFoundError(
            f"{what} at {path} has no config.json; pass a checkpoint dir (config.json, "
            "model.safetensors, tokenizer.json) via the config's pool.model.backend.checkpoint"
        )
    return path


class CoreModelBackend:
    """The built-in DeepSeek-style model, loaded once in this process."""

    def __init__(self, checkpoint: str | Path | None = None, device: str = "cpu", torch_threads: int = 1):
        import torch

        import core_model

        torch.set_num_threads(torch_threads)
        self.path = resolve_checkpoint(str(checkpoint) if checkpoint else None)
        self.model = core_model.load_pretrained(str(self.path), device=device)
        self.model.eval()
        self.tokenizer = core_model.load_tokenizer(str(self.path))
        self.name = self.path.name

    def complete(self, prompts: list[str], params: SamplingParams) -> list[dict]:
        from core_model import GenerationConfig, generate

        cfg = GenerationConfig(
            max_new_tokens=params.max_tokens, temperature=params.temperature, top_p=params.top_p,
            top_k=params.top_k, stop=list(params.stop), seed=params.seed,
        )
        out = []
        for c in generate(self.model, self.tokenizer, prompts, cfg):
            out.append({
                "text": c.text, "finish_reason": c.finish_reason,
                "prompt_tokens": len(c.prompt_token_ids), "completion_tokens": len(c.token_ids),
                "logprobs": [float(x) for x in c.logprobs] if c.logprobs is not None else None,
            })
        return out


class OpenAIBackend:
    """Any server speaking OpenAI's /v1/completions (vLLM, SGLang, a hosted API)."""

    def __init__(self, url: str, model: str = "default", api_key: str | None = None, timeout_s: float = 300.0):
        import httpx

        if not url:
            raise ValueError("openai backend needs a url, e.g. http://127.0.0.1:8000/v1")
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.url = url.rstrip("/")
        self.name = model
        self._client = httpx.Client(base_url=self.url, headers=headers, timeout=timeout_s)

    def complete(self, prompts: list[str], params: SamplingParams) -> list[dict]:
        body = {"model": self.name, "prompt": prompts, "max_tokens": params.max_tokens,
                "temperature": params.temperature, "top_p": params.top_p}
        if params.stop:
            body["stop"] = list(params.stop)
        if params.seed is not None:
            body["seed"] = params.seed
        if params.top_k:
            body["top_k"] = params.top_k  # vLLM/SGLang extension
        resp = self._client.post("/completions", json=body)
        if resp.status_code != 200:
            raise RuntimeError(f"completions endpoint {self.url} answered {resp.status_code}: {resp.text[:300]}")
        data = resp.json()
        choices = sorted(data["choices"], key=lambda c: c.get("index", 0))
        usage = data.get("usage") or {}
        return [{"text": c["text"], "finish_reason": c.get("finish_reason"),
                 "prompt_tokens": None, "completion_tokens": usage.get("completion_tokens")}
                for c in choices]


def make_backend(config: BackendConfig) -> GenerationBackend:
    """Build the backend a config names."""
    if config.kind == "openai":
        return OpenAIBackend(config.url or "", config.model, config.api_key, config.request_timeout_s)
    return CoreModelBackend(config.checkpoint, config.device, config.torch_threads)


class ModelBackedGenerator:
    """prover's Generator protocol over the pool's model worker (`generate(prompts, params) -> [dict]`).

    Same prompts and stops as `prover.ModelGenerator`; `params` are prover GeneratorConfig fields.
    """

    def __init__(self, generate: Callable[[list[str], dict], list[dict]] | None, params: dict | None = None):
        from prover.generators import GeneratorConfig

        if generate is None:
            raise RuntimeError("no model worker in this pool (pool.model.enabled is false); "
                               "submit the job with generator 'builtin' or enable the model")
        self.generate = generate
        self.config = GeneratorConfig(**(params or {}))
        self._calls = 0

    def _sample(self, prompt: str, n: int, max_tokens: int, stop: list[str]) -> list[tuple[str, float]]:
        seed = None if self.config.seed is None else self.config.seed + self._calls
        self._calls += 1
        outs = self.generate([prompt] * n, {"max_tokens": max_tokens, "temperature": self.config.temperature,
                                            "top_p": self.config.top_p, "stop": stop, "seed": seed})
        return [(o["text"], float(sum(o.get("logprobs") or [0.0]))) for o in outs]

    def propose_tactics(self, theorem, state, n: int) -> list:
        from prover import Proposal
        from prover.generators import tactic_prompt

        seen: dict[str, float] = {}
        for text, lp in self._sample(tactic_prompt(theorem, state), n, self.config.max_tactic_tokens, ["\n"]):
            tactic = text.strip().splitlines()[0].strip() if text.strip() else ""
            if tactic and lp > seen.get(tactic, float("-inf")):
                seen[tactic] = lp
        return sorted((Proposal(t, lp) for t, lp in seen.items()), key=lambda p: -p.logprob)[:n]

    def propose_proofs(self, theorem, prefix: str, n: int) -> list:
        from prover import Proposal
        from prover.generators import proof_prompt

        samples = self._sample(proof_prompt(theorem, prefix), n, self.config.max_proof_tokens, ["```"])
        return [Proposal(t, lp) for t, lp in samples if t.strip()]
