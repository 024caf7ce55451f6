"""Batched sampling with the latent KV cache: prefill with expanded K/V, decode with absorbed MLA.

Prompts of different lengths are left-padded into one batch; every row finishes on its own (eos, a stop
string, or max_new_tokens). Each generated token comes with its log-probability under the temperature-scaled
distribution *before* top-k / top-p truncation (log_softmax(logits / T); for temperature 0 it is the plain
log_softmax(logits)), which is what RL importance ratios and best-first search scores use.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Protocol

import torch
from pydantic import BaseModel, ConfigDict, Field
from tqdm import tqdm

from core_model.cache import KVCache
from core_model.cuda_graph import DecodeKernels


class GenerationConfig(BaseModel):
    """Sampling settings; temperature 0 means greedy, top_k 0 and top_p 1.0 mean no truncation."""

    model_config = ConfigDict(extra="forbid")

    max_new_tokens: int = Field(128, ge=1)
    temperature: float = Field(1.0, ge=0.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    top_k: int = Field(0, ge=0)
    stop: list[str] = Field(default_factory=list)
    seed: int | None = None
    cuda_graph: bool = Field(True, description="on a CUDA device, replay each decode step as one captured graph")
    decode_kernels: DecodeKernels = Field(default_factory=DecodeKernels,
                                          description="what the captured step runs (compile, Triton kernels)")


@dataclass
class Completion:
    """One generated continuation; token_ids and logprobs cover generated tokens only."""

    text: str
    token_ids: list[int]
    logprobs: list[float]
    finish_reason: str  # "stop" | "length" | "eos"
    prompt_token_ids: list[int] = field(default_factory=list)


class TokenizerLike(Protocol):
    eos_id: int | None
    bos_id: int | None

    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids: list[int]) -> str: ...


def sample_next(logits: torch.Tensor, cfg: GenerationConfig, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """logits [b, V] -> (token ids [b], logprobs [b]) following cfg (see the module docstring for logprobs)."""
    logits = logits.float()
    if cfg.temperature == 0:
        tok = logits.argmax(-1)
        return tok, logits.log_softmax(-1).gather(1, tok[:, None])[:, 0]
    scaled = logits / cfg.temperature
    logprobs = scaled.log_softmax(-1)
    filtered = scaled
    if cfg.top_k and cfg.top_k < scaled.shape[-1]:
        kth = scaled.topk(cfg.top_k, -1)[0][:, -1:]
        filtered = filtered.masked_fill(filtered < kth, float("-inf"))
    if cfg.top_p < 1.0:
        sorted_logits, order = filtered.sort(-1, descending=True)
        probs = sorted_logits.softmax(-1)
        drop = probs.cumsum(-1) - probs > cfg.top_p  # keep the smallest prefix whose mass reaches top_p
        filtered = filtered.scatter(1, order, sorted_logits.masked_fill(drop, float("-inf")))
    tok = torch.multinomial(filtered.softmax(-1), 1, generator=gen)[:, 0]
    return tok, logprobs.gather(1, tok[:, None])[:, 0]


def _find_stop(text: str, stops: list[str]) -> int:
    hits = [i for i in (text.find(s) for s in stops) if i >= 0]
    return min(hits) if hits else -1


@torch.inference_mode()
def _generate(model, prompt_ids: list[list[int]], cfg: GenerationConfig, eos_id: int | None,
              decode: Callable[[list[int]], str] | None) -> list[Completion]:
    if not prompt_ids:
        return []
    for i, p in enumerate(prompt_ids):
        if not p:
            raise ValueError(f"prompt {i} has no tokens; give at least one token (e.g. a BOS id)")
        vocab = model.config.vocab_size
        if min(p) < 0 or max(p) >= vocab:
            raise ValueError(f"prompt {i} has token ids outside the model vocabulary 0..{vocab - 1}")
    device = model.lm_head.weight.device
    if model.lm_head.weight.dtype == torch.bfloat16:
        from core_model.precision import warn_if_emulated_bf16

        warn_if_emulated_bf16(device, "generation")
    b, width = len(prompt_ids), max(len(p) for p in prompt_ids)
    ids = torch.zeros(b, width, dtype=torch.long, device=device)
    mask = torch.zeros(b, width, dtype=torch.bool, device=device)
    for i, p in enumerate(prompt_ids):  # left padding keeps every row's next slot aligned
        ids[i, width - len(p):] = torch.tensor(p, device=device)
        mask[i, width - len(p):] = True
    gen = torch.Generator(device=device)
    gen.manual_seed(cfg.seed) if cfg.seed is not None else gen.seed()
    cache = KVCache(b, width + cfg.max_new_tokens, device)
    logits = model(ids, attention_mask=mask, cache=cache)[:, -1]
    decode_step = _decode_step(model, cache, cfg.cuda_graph and cfg.max_new_tokens >= 8,  # capture costs ~3 steps
                               cfg.decode_kernels)
    out_ids: list[list[int]] = [[] for _ in range(b)]
    out_lp: list[list[float]] = [[] for _ in range(b)]
    reason: list[str | None] = [None] * b
    texts = [""] * b
    for step in tqdm(range(cfg.max_new_tokens), desc="generate", unit="tok", leave=False, disable=None):
        tok, lp = sample_next(logits, cfg, gen)
        for i, (t, l) in enumerate(zip(tok.tolist(), lp.tolist())):
            if reason[i] is not None:
                continue
            out_ids[i].append(t)
            out_lp[i].append(l)
            if eos_id is not None and t == eos_id:
                reason[i] = "eos"
            elif cfg.stop and decode is not None:
                texts[i] = decode(out_ids[i])
                if _find_stop(texts[i], cfg.stop) >= 0:
                    reason[i] = "stop"
            if reason[i] is None and step == cfg.max_new_tokens - 1:
                reason[i] = "length"
        if all(r is not None for r in reason):
            break
        logits = decode_step(tok[:, None])
    return [_completion(p, o, l, r, decode, cfg.stop) for p, o, l, r in zip(prompt_ids, out_ids, out_lp, reason)]


def _decode_step(model, cache: KVCache, cuda_graph: bool,
                 kernels: DecodeKernels | None = None) -> Callable[[torch.Tensor], torch.Tensor]:
    """tokens [b, 1] -> next logits [b, V]: a replayed CUDA graph where possible (with `kernels`, falling back
    to the eager kernels if they fail), else the eager forward."""
    if cuda_graph and cache.device.type == "cuda":
        from core_model.cuda_graph import graphed_decoder

        runner = graphed_decoder(model, cache, kernels)
        if runner is not None:
            return runner.step
    return lambda tokens: model(tokens, cache=cache)[:, -1]


def _completion(prompt, ids, lps, reason, decode, stops) -> Completion:
    text = ""
    if decode is not None:
        text = decode(ids[:-1] if reason == "eos" else ids)
        cut = _find_stop(text, stops) if reason == "stop" else -1
        text = text[:cut] if cut >= 0 else text
    return Completion(text=text, token_ids=ids, logprobs=lps, finish_reason=reason, prompt_token_ids=list(prompt))


def generate_ids(model, prompt_ids: list[list[int]], config: GenerationConfig | None = None,
                 eos_id: int | None = None) -> list[Completion]:
    """Sample continuations of token-id prompts; Completion.text is empty (stop strings need `generate`)."""
    config = config or GenerationConfig()
    if config.stop:
        raise ValueError("stop strings need a tokenizer to decode text; call generate(model, tokenizer, ...)")
    return _generate(model, prompt_ids, config, eos_id, None)


def generate(model, tokenizer: TokenizerLike, prompts: list[str], config: GenerationConfig | None = None) -> list[Completion]:
    """Sample one continuation per prompt; text excludes the eos token and anything from a stop string on."""
    config = config or GenerationConfig()
    bos = getattr(tokenizer, "bos_id", None)
    encoded = []
    for p in prompts:
        ids = list(tokenizer.encode(p))
        if bos is not None and (not ids or ids[0] != bos):
            ids = [bos] + ids
        encoded.append(ids)
    return _generate(model, encoded, config, getattr(tokenizer, "eos_id", None), tokenizer.decode)
