"""Held-out accuracy: greedy completions of held-out tasks, scored by the same verified rewards."""
from __future__ import annotations

from .config import SamplingConfig
from .policy import sample
from .rewards import RewardFn
from .tasks import Task


def heldout_accuracy(model, tokenizer, tasks: list[Task], reward_fn: RewardFn, sampling: SamplingConfig,
                     batch_size: int = 64) -> float:
    """Fraction of `tasks` whose greedy (temperature 0) completion is verified correct."""
    if not tasks:
        raise ValueError("no held-out tasks to evaluate; lower --heldout-fraction's divisor or add prompts")
    greedy = sampling.model_copy(update={"temperature": 0.0})
    return pass_at_k(model, tokenizer, tasks, reward_fn, greedy, 1, batch_size=batch_size)[0]


def pass_at_k(model, tokenizer, tasks: list[Task], reward_fn: RewardFn, sampling: SamplingConfig, k: int,
              seed: int = 0, batch_size: int = 32) -> tuple[float, float]:
    """(pass@k, mean sampled accuracy) of `tasks` at `sampling.temperature`: what GRPO's groups can find."""
    if not tasks:
        raise ValueError("no tasks to evaluate")
    if k < 1:
        raise ValueError(f"k={k}: need at least one sample per task")
    solved = correct = 0
    for i in range(0, len(tasks), batch_size):
        chunk = tasks[i : i + batch_size]
        samples = sample(model, tokenizer, chunk, k, sampling, seed=seed + i, version=-1)
        ok = [reward_fn(s.task, s.text, s.finished).correct for s in samples]
        correct += sum(ok)
        solved += sum(any(ok[j * k : (j + 1) * k]) for j in range(len(chunk)))
    return solved / len(tasks), correct / (len(tasks) * k)
