"""Ray shells around the plain RL classes: learner, rollout workers, reward workers."""
from __future__ import annotations

import os

import ray

from .config import RLConfig
from .learner import Learner
from .rewards import RewardFn
from .rollout import RolloutWorker


def _node() -> str:
    """The Ray node this actor runs on (where a lost node's work came from)."""
    return ray.get_runtime_context().get_node_id()


@ray.remote
class LearnerActor:
    def __init__(self, config: RLConfig):
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        self.learner = Learner(config)

    def node(self) -> str:
        return _node()

    def publish(self) -> tuple[list, int]:
        """Put the weights in the object store once; rollout actors each get the same ref."""
        return [ray.put(self.learner.weights())], self.learner.version

    def step(self, samples):
        return self.learner.step(samples)

    def state(self) -> dict:
        return self.learner.state()

    def save_checkpoint(self, run_dir: str, step: int, extra: dict, keep: int) -> str:
        from .checkpoint import save_checkpoint

        path = save_checkpoint(run_dir, step, self.learner.save_model, {**self.learner.state(), **extra}, keep)
        return str(path)

    def restore(self, checkpoint: str) -> int:
        from core_model import load_pretrained

        from .checkpoint import load_trainer_state

        state = load_trainer_state(checkpoint)
        weights = load_pretrained(checkpoint).state_dict()
        self.learner.load_state(weights, state)
        return self.learner.version

    def heldout_accuracy(self, tasks, reward_config, sampling) -> float:
        from .evaluate import heldout_accuracy

        return heldout_accuracy(self.learner.model, self.learner.tokenizer, tasks, RewardFn(reward_config), sampling)


@ray.remote
class RolloutActor:
    def __init__(self, model_dir: str, threads: int):
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        self.worker = RolloutWorker(model_dir, threads)

    def node(self) -> str:
        return _node()

    def pid(self) -> int:
        return os.getpid()

    def set_weights(self, weights_ref: list, version: int) -> int:
        # weights_ref is a one-element list so Ray passes the ref through and we fetch it here.
        return self.worker.set_weights(ray.get(weights_ref[0]), version)

    def rollout(self, tasks, group_size, sampling, seed, group_offset):
        return self.worker.rollout(tasks, group_size, sampling, seed, group_offset)


@ray.remote
class RewardActor:
    def __init__(self, config, lean_project: str | None = None):
        lean_env = None
        if lean_project:
            from prover import ReplConfig, ReplEnv

            lean_env = ReplEnv(ReplConfig(project=lean_project))
        self.fn = RewardFn(config, lean_env)

    def score(self, samples):
        """Fill reward/correct in each sample and return them."""
        for s in samples:
            r = self.fn(s.task, s.text, s.finished)
            s.reward, s.correct = r.reward, r.correct
        return samples
