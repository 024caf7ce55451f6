"""Policy helpers shared by the learner, rollout actors and evaluation: load, sample, score tokens."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from core_model.grpo import token_logprobs

from .config import SamplingConfig
from .tasks import Task


@dataclass
class Sample:
    """One completion of one prompt, as a rollout actor produced it."""

    task: Task
    group: int  # index of the prompt within the step; the G samples of a prompt share it
    prompt_ids: list[int]
    completion_ids: list[int]
    text: str
    finished: bool  # stopped by EOS/stop string rather than max_new_tokens
    policy_version: int
    logprobs: list[float] = field(default_factory=list)
    reward: float = 0.0
    correct: bool = False


def load_policy(model_dir: str | Path, threads: int = 1):
    """(model, tokenizer) from a checkpoint directory holding config.json, model.safetensors, tokenizer.json."""
    from core_model import load_pretrained, load_tokenizer

    torch.set_num_threads(threads)
    model = load_pretrained(model_dir, dtype=torch.float32)
    tokenizer = load_tokenizer(model_dir)
    return model, tokenizer


def sample(model, tokenizer, tasks: list[Task], group_size: int, sampling: SamplingConfig,
           seed: int, version: int, group_offset: int = 0) -> list[Sample]:
    """G completions for each task from the current weights, with per-token logprobs."""
    from core_model import GenerationConfig, generate

    prompts = [t.prompt for t in tasks for _ in range(group_size)]
    cfg = GenerationConfig(
        max_new_tokens=sampling.max_new_tokens, temperature=sampling.temperature, top_p=sampling.top_p,
        top_k=sampling.top_k, stop=list(sampling.stop), seed=seed,
    )
    model.eval()
    with torch.no_grad():
        completions = generate(model, tokenizer, prompts, cfg)
    out = []
    for i, c in enumerate(completions):
        out.append(Sample(
            task=tasks[i // group_size], group=group_offset + i // group_size,
            prompt_ids=list(c.prompt_token_ids), completion_ids=list(c.token_ids), text=c.text,
            finished=c.finish_reason != "length", policy_version=version,
            logprobs=[float(x) for x in (c.logprobs or [])],
        ))
    return out


def pack(samples: list[Sample], pad_id: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Left-padded prompt+completion ids and masks: input_ids[b,s], attention[b,s], targets[b,s-1], comp_mask[b,s-1]."""
    seqs = [s.prompt_ids + s.completion_ids for s in samples]
    width = max(len(x) for x in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    attn = torch.zeros((len(seqs), width), dtype=torch.long)
    comp = torch.zeros((len(seqs), width - 1), dtype=torch.bool)
    for i, (s, seq) in enumerate(zip(samples, seqs)):
        off = width - len(seq)  # the model takes left padding (positions count from the first real token)
        ids[i, off:] = torch.tensor(seq)
        attn[i, off:] = 1
        # target position j predicts token j+1: the completion's tokens are predicted from off+len(prompt)-1 on
        comp[i, off + len(s.prompt_ids) - 1 :] = True
    return ids, attn, ids[:, 1:], comp


def sequence_logprobs(model, input_ids: torch.Tensor, attention: torch.Tensor, targets: torch.Tensor,
                      routing=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token logprob and entropy of targets under `model`: [b,s-1] each; `routing` (a core_model
    RoutingStats) receives the forward's MoE loads and balance losses."""
    extra = {} if routing is None else {"routing": routing}
    logits = model(input_ids, attention_mask=attention, **extra)[:, :-1]  # [b,s-1,v]
    return token_logprobs(logits, targets)


def rollout_logprobs(samples: list[Sample], comp_mask: torch.Tensor) -> torch.Tensor:
    """The sampler's per-token logprobs laid out like `pack`'s completion mask: [b, s-1]."""
    out = torch.zeros(comp_mask.shape, dtype=torch.float32)
    for i, s in enumerate(samples):
        n = int(comp_mask[i].sum())
        if len(s.logprobs) != n:
            raise ValueError(f"sample {i} has {len(s.logprobs)} logprobs for {n} completion tokens")
        out[i, comp_mask[i]] = torch.tensor(s.logprobs, dtype=torch.float32)
    return out
