"""The learner: GRPO updates of the policy from scored rollouts, versioned weights, checkpoint state.

A plain class; `workers.rl.actors.LearnerActor` is its Ray shell.
"""
from __future__ import annotations

import copy
import random
import time
from pathlib import Path

import numpy as np
import torch

from core_model import RoutingStats
from core_model.grpo import (
    group_advantages,
    grpo_loss,
    informative_groups,
    overlong_shaping,
)

from .config import RLConfig
from .policy import Sample, load_policy, pack, rollout_logprobs, sequence_logprobs


class Learner:
    """Holds the policy, the optimizer, the LR schedule and (when kl_coef > 0) a frozen reference."""

    def __init__(self, config: RLConfig, model_dir: str | Path | None = None):
        self.config = config
        torch.manual_seed(config.seed)
        self.model, self.tokenizer = load_policy(model_dir or config.model_dir(), config.threads)
        # on a GPU node the placement group gave this actor a GPU; rollout actors stay where they are
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.model.to(self.device).train()
        # With kl_coef == 0 no reference is kept: half the memory and no extra forward pass.
        self.reference = None
        if config.grpo.kl_coef > 0:
            self.reference = copy.deepcopy(self.model).eval()
            self.reference.requires_grad_(False)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        warmup = config.warmup_steps
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda s: min(1.0, (s + 1) / warmup) if warmup else 1.0
        )
        self.version = 0
        self.pad_id = self.tokenizer.pad_id if self.tokenizer.pad_id is not None else 0

    def weights(self) -> dict[str, torch.Tensor]:
        """The current policy weights (CPU tensors, detached) for the rollout actors."""
        return {k: v.detach().to("cpu", copy=True) for k, v in self.model.state_dict().items()}

    def step(self, samples: list[Sample]) -> dict[str, float]:
        """One RL step: advantages from rewards, `updates_per_step` GRPO updates; returns stats."""
        t0 = time.perf_counter()
        cfg = self.config.grpo
        samples, adv, dropped = self._advantages(samples)
        stats: dict[str, float] = {"groups_dropped": float(dropped)}
        if not samples:  # every group was all-equal: nothing to learn from this batch
            self.version += 1
            return {**stats, "loss": 0.0, "kl": 0.0, "clip_frac": 0.0, "entropy": 0.0,
                    "grad_norm": 0.0, "learner_s": time.perf_counter() - t0}
        ids, attn, targets, mask = (t.to(self.device) for t in pack(samples, self.pad_id))
        old_logp, ref_logp = None, None
        stale = any(s.policy_version != self.version for s in samples)
        with torch.no_grad():
            if stale and self.config.sampling.temperature == 1.0 and all(x.logprobs for x in samples):
                # off-policy samples (overlap): the sampler's own logprobs give the true importance ratio
                old_logp = rollout_logprobs(samples, mask.cpu()).to(self.device)
            elif self.config.updates_per_step > 1 or stale:
                old_logp, _ = sequence_logprobs(self.model, ids, attn, targets)
            # else: one update on fresh samples, ratio 1: old = current logp, detached (saves a forward)
            if self.reference is not None:
                ref_logp, _ = sequence_logprobs(self.reference, ids, attn, targets)
        for _ in range(self.config.updates_per_step):
            routing = RoutingStats()
            logp, entropy = sequence_logprobs(self.model, ids, attn, targets, routing=routing)
            if old_logp is None:
                old_logp = logp.detach()
            loss, s = grpo_loss(logp, old_logp, adv, mask, cfg, ref_logprobs=ref_logp)
            if self.config.aux_loss_coef > 0 and routing.aux_losses:
                loss = loss + self.config.aux_loss_coef * routing.aux_loss()
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.max_grad_norm)
            self.optimizer.step()
            if self.config.routing_bias_rate > 0:
                self.model.update_routing_bias(self.config.routing_bias_rate, routing)
        self.scheduler.step()
        self.version += 1
        m = mask.float()
        stats.update(s)
        stats.update({
            "loss": float(loss.detach()),
            "entropy": float((entropy.detach() * m).sum() / m.sum().clamp(min=1)),
            "grad_norm": float(grad_norm),
            "lr": self.scheduler.get_last_lr()[0],
            "learner_s": time.perf_counter() - t0,
        })
        return stats

    def _advantages(self, samples: list[Sample]) -> tuple[list[Sample], torch.Tensor, int]:
        cfg = self.config.grpo
        groups: dict[int, list[Sample]] = {}
        for s in samples:
            groups.setdefault(s.group, []).append(s)
        sizes = {len(g) for g in groups.values()}
        if len(sizes) != 1:
            raise ValueError(f"every prompt needs the same number of completions, got group sizes {sorted(sizes)}")
        ordered = [groups[k] for k in sorted(groups)]
        rewards = torch.tensor([[s.reward for s in g] for g in ordered], dtype=torch.float32)
        if cfg.overlong_buffer:
            lengths = torch.tensor([[len(s.completion_ids) for s in g] for g in ordered])
            rewards = rewards + overlong_shaping(lengths, self.config.sampling.max_new_tokens, cfg)
        keep = informative_groups(rewards) if cfg.dynamic_sampling else torch.ones(len(ordered), dtype=torch.bool)
        adv = group_advantages(rewards, cfg)[keep].flatten()
        kept = [s for g, k in zip(ordered, keep.tolist()) if k for s in g]
        return kept, adv, int((~keep).sum())

    # ------------------------------------------------------------ checkpoint state

    def state(self) -> dict:
        """Everything but the model weights needed to continue exactly: optimizer, schedule, RNG, version."""
        return {
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "version": self.version,
            "rng": {"torch": torch.get_rng_state(), "python": random.getstate(), "numpy": np.random.get_state()},
            "reference": None if self.reference is None else self.reference.state_dict(),
        }

    def load_state(self, weights: dict[str, torch.Tensor], state: dict) -> None:
        """Restore from `weights` and `state()` of an earlier run."""
        self.model.load_state_dict(weights)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.version = int(state["version"])
        torch.set_rng_state(state["rng"]["torch"])
        random.setstate(state["rng"]["python"])
        np.random.set_state(state["rng"]["numpy"])
        if self.reference is not None and state.get("reference") is not None:
            self.reference.load_state_dict(state["reference"])

    def save_model(self, directory: str | Path) -> None:
        self.model.save_pretrained(directory)
        self.tokenizer.save(directory)
