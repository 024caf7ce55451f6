"""Rollout worker: a policy copy that samples G completions per prompt at a known weight version.

A plain class; `workers.rl.actors.RolloutActor` is its Ray shell.
"""
from __future__ import annotations

from pathlib import Path

import torch

from .config import SamplingConfig
from .policy import Sample, load_policy, sample
from .tasks import Task


class RolloutWorker:
    """Samples from the latest weights it was sent; each sample records that version."""

    def __init__(self, model_dir: str | Path, threads: int = 1):
        self.model, self.tokenizer = load_policy(model_dir, threads)
        self.model.eval()
        self.version = 0

    def set_weights(self, weights: dict[str, torch.Tensor], version: int) -> int:
        """Load weights published by the learner; returns the version now held."""
        self.model.load_state_dict(weights)
        self.version = int(version)
        return self.version

    def rollout(self, tasks: list[Task], group_size: int, sampling: SamplingConfig, seed: int,
                group_offset: int = 0) -> list[Sample]:
        """G samples per task from the current weights."""
        return sample(self.model, self.tokenizer, tasks, group_size, sampling, seed, self.version, group_offset)
