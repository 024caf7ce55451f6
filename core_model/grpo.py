"""GRPO losses: group-relative advantages, the clipped surrogate, k3 KL, and token aggregation.

DeepSeekMath's GRPO with the common variants as options:
  - Dr. GRPO: no std division in the advantage, token sum normalised by a constant length.
  - DAPO: clip-higher (eps_high > eps_low), token-level mean, dynamic sampling (drop groups whose
    rewards are all equal), overlong reward shaping.
  - RLOO: leave-one-out baseline.
With `kl_coef == 0` the reference model is not needed and `ref_logprobs` may be None.
"""
from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import BaseModel, Field, model_validator

Advantage = Literal["grpo", "dr_grpo", "rloo"]
Aggregation = Literal["seq_mean_token_mean", "token_mean", "token_sum_norm"]


class GRPOConfig(BaseModel):
    """Loss settings for one RL job; `GRPOConfig.preset(name)` gives grpo / dr_grpo / dapo / rloo."""

    group_size: int = Field(8, ge=2, description="completions sampled per prompt (G)")
    advantage: Advantage = "grpo"
    std_eps: float = 1e-4
    clip_eps_low: float = Field(0.2, ge=0)
    clip_eps_high: float = Field(0.2, ge=0, description="DAPO clip-higher uses 0.28")
    kl_coef: float = Field(0.04, ge=0, description="beta for the k3 KL to the reference; 0 keeps no reference")
    aggregation: Aggregation = "seq_mean_token_mean"
    norm_length: int | None = Field(None, ge=1, description="constant divisor for token_sum_norm; default: padded length")
    dynamic_sampling: bool = False
    overlong_buffer: int = Field(0, ge=0, description="DAPO soft overlong punishment window (tokens); 0 = off")
    overlong_penalty: float = Field(1.0, ge=0)

    @model_validator(mode="after")
    def _check(self) -> "GRPOConfig":
        if self.clip_eps_low >= 1:
            raise ValueError(f"clip_eps_low={self.clip_eps_low} must be < 1 (ratio lower bound 1-eps)")
        return self

    @classmethod
    def preset(cls, name: str, **overrides) -> "GRPOConfig":
        """Named variant: 'grpo' (DeepSeekMath), 'dr_grpo', 'dapo' or 'rloo', then `overrides`."""
        presets = {
            "grpo": {},
            "dr_grpo": {"advantage": "dr_grpo", "aggregation": "token_sum_norm"},
            "dapo": {
                "clip_eps_high": 0.28, "aggregation": "token_mean", "kl_coef": 0.0,
                "dynamic_sampling": True, "overlong_buffer": 4,
            },
            "rloo": {"advantage": "rloo"},
        }
        if name not in presets:
            raise ValueError(f"unknown GRPO variant {name!r}; choose one of {sorted(presets)}")
        return cls(**{**presets[name], **overrides})


def group_advantages(rewards: torch.Tensor, config: GRPOConfig) -> torch.Tensor:
    """Per-completion advantages from rewards[n_groups, G] (one row per prompt) -> [n_groups, G]."""
    if rewards.dim() != 2 or rewards.shape[1] < 2:
        raise ValueError(f"rewards must be [n_groups, G>=2], got shape {tuple(rewards.shape)}")
    rewards = rewards.float()
    mean = rewards.mean(dim=1, keepdim=True)
    if config.advantage == "grpo":
        # unbiased std, as DeepSeekMath/TRL; eps keeps all-equal groups at exactly 0
        return (rewards - mean) / (rewards.std(dim=1, keepdim=True) + config.std_eps)
    if config.advantage == "dr_grpo":
        return rewards - mean
    g = rewards.shape[1]  # rloo: r_i - mean of the other G-1 = G/(G-1) * (r_i - mean)
    return (rewards - mean) * g / (g - 1)


def informative_groups(rewards: torch.Tensor) -> torch.Tensor:
    """DAPO dynamic sampling: bool[n_groups], False where every completion got the same reward."""
    return (rewards.max(dim=1).values - rewards.min(dim=1).values) > 0


def overlong_shaping(lengths: torch.Tensor, max_length: int, config: GRPOConfig) -> torch.Tensor:
    """DAPO soft overlong punishment added to rewards: 0 up to max-buffer, linear to -penalty at max."""
    if config.overlong_buffer == 0:
        return torch.zeros_like(lengths, dtype=torch.float32)
    start = max_length - config.overlong_buffer
    over = (lengths.float() - start).clamp(min=0) / config.overlong_buffer
    return -config.overlong_penalty * over.clamp(max=1.0)


def token_logprobs(logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-prob of each target token and the policy entropy there: logits[b,t,v], targets[b,t] -> [b,t], [b,t]."""
    logp_all = F.log_softmax(logits.float(), dim=-1)  # [b,t,v]
    logp = logp_all.gather(-1, targets.unsqueeze(-1)).squeeze(-1)  # [b,t]
    entropy = -(logp_all.exp() * logp_all).sum(-1)  # [b,t]
    return logp, entropy


def k3_kl(logprobs: torch.Tensor, ref_logprobs: torch.Tensor) -> torch.Tensor:
    """Schulman's k3 estimator of KL(pi || ref) per token: exp(r - p) - (r - p) - 1 >= 0."""
    d = ref_logprobs - logprobs
    return torch.exp(d) - d - 1


def aggregate(values: torch.Tensor, mask: torch.Tensor, config: GRPOConfig) -> torch.Tensor:
    """Reduce per-token values[b,t] under mask[b,t] to a scalar as `config.aggregation` says."""
    mask = mask.to(values.dtype)
    if config.aggregation == "seq_mean_token_mean":  # GRPO: each sequence weighs the same
        per_seq = (values * mask).sum(1) / mask.sum(1).clamp(min=1)
        return per_seq.mean()
    if config.aggregation == "token_mean":  # DAPO: each token weighs the same
        return (values * mask).sum() / mask.sum().clamp(min=1)
    norm = config.norm_length or mask.shape[1]  # Dr. GRPO: no length bias, constant divisor
    return (values * mask).sum() / (mask.shape[0] * norm)


def grpo_loss(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    config: GRPOConfig,
    ref_logprobs: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Clipped GRPO objective (to minimise) on completion tokens; all token tensors [b,t], advantages [b].

    Returns the loss and detached stats: kl, clip_frac, ratio_mean.
    """
    if logprobs.shape != old_logprobs.shape or logprobs.shape != mask.shape:
        raise ValueError(
            f"logprobs {tuple(logprobs.shape)}, old_logprobs {tuple(old_logprobs.shape)} and "
            f"mask {tuple(mask.shape)} must have the same [batch, tokens] shape"
        )
    adv = advantages.to(logprobs.dtype).unsqueeze(1)  # [b,1]
    ratio = torch.exp(logprobs - old_logprobs)  # [b,t]
    clipped = ratio.clamp(1 - config.clip_eps_low, 1 + config.clip_eps_high)
    per_token = -torch.min(ratio * adv, clipped * adv)  # [b,t]
    kl = torch.zeros_like(per_token)
    if config.kl_coef > 0:
        if ref_logprobs is None:
            raise ValueError("kl_coef > 0 needs ref_logprobs from the frozen reference model (or set kl_coef=0)")
        kl = k3_kl(logprobs, ref_logprobs)
        per_token = per_token + config.kl_coef * kl
    loss = aggregate(per_token, mask, config)
    with torch.no_grad():
        m = mask.to(per_token.dtype)
        n = m.sum().clamp(min=1)
        was_clipped = ((ratio * adv) > (clipped * adv)).to(per_token.dtype)
        stats = {
            "kl": float((kl * m).sum() / n),
            "clip_frac": float((was_clipped * m).sum() / n),
            "ratio_mean": float((ratio * m).sum() / n),
        }
    return loss, stats
