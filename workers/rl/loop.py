"""The GRPO loop on Ray: publish weights, roll out in chunks, score while generating, learn, checkpoint.

Each step:
  1. the learner puts its weights in the object store once; every rollout actor gets that one ref;
  2. the step's prompts are cut into chunks queued on the rollout actors; as each chunk finishes its
     samples go to a reward actor, so rewards are computed while the next chunk is generated;
  3. the learner takes one GRPO step on all scored samples;
  4. metrics are logged; every `checkpoint_every` steps model, optimizer, schedule, RNG and the data
     cursor are saved, so `--resume` continues with the same data order.
"""
from __future__ import annotations

import json
import logging
import math
import sys
import time
from pathlib import Path

from .checkpoint import latest_checkpoint, load_trainer_state
from .config import RLConfig
from .metrics import MetricsLog, plot_run
from .policy import Sample
from .tasks import PromptStream, Task, load_tasks, make_tiny_tasks, split_tasks

log = logging.getLogger(__name__)


def load_prompt_set(config: RLConfig) -> tuple[list[Task], list[Task]]:
    """(train, heldout) tasks for the job; Lean sets need a Lean project for their reward."""
    tasks = make_tiny_tasks() if config.prompts == "tiny" else load_tasks(config.prompts)
    if any(t.kind == "lean" for t in tasks) and not config.reward.lean_project:
        raise ValueError(
            f"prompt set {config.prompts} has Lean tasks: pass --project PATH (a Lean project with the REPL built) "
            "so proofs can be checked"
        )
    train, held = split_tasks(tasks, config.heldout_fraction)
    if not held:  # tiny sets: still measure something
        held = train[: config.eval_size]
    return train, held[: config.eval_size]


class RLRun:
    """One RL job's actors and state; `run()` drives it to `config.steps`."""

    def __init__(self, config: RLConfig):
        import ray

        from .actors import LearnerActor, RewardActor, RolloutActor

        self.config = config
        self.ray = ray
        self.train, self.heldout = load_prompt_set(config)
        self.learner = LearnerActor.options(**_learner_placement(ray)).remote(config)
        model_dir = str(config.model_dir())
        # Spread over the cluster's nodes; a lost node's actors are restarted elsewhere and its work redone.
        self.rollouts = [RolloutActor.options(**WORKER_OPTIONS, num_cpus=config.threads).remote(model_dir, config.threads)
                         for _ in range(config.rollout_workers)]
        self._reward_args = (config.reward, config.reward.lean_project)
        self.rewarders = [_new_rewarder(self._reward_args) for _ in range(config.reward_workers)]
        self.synced: set[int] = set()  # rollout actors holding this step's weights
        self._weights = None
        self.start_step, self.start_acc, cursor = 0, None, 0
        ckpt = latest_checkpoint(config.run_dir) if config.resume else None
        if ckpt is not None:
            state = load_trainer_state(ckpt)
            ray.get(self.learner.restore.remote(str(ckpt)))
            self.start_step, cursor, self.start_acc = state["step"], state["cursor"], state.get("start_acc")
        self.stream = PromptStream(self.train, config.seed, cursor)
        self.metrics = MetricsLog(config.run_dir, resume_after=self.start_step if ckpt is not None else None)
        self.rollout_log = RolloutLog(Path(config.run_dir) / "rollouts.jsonl", self.start_step)
        self.last_versions: list[int] = []
        self._prefetched: tuple[list[Sample], int, float] | None = None

    def evaluate(self) -> float:
        c = self.config
        return self.ray.get(self.learner.heldout_accuracy.remote(self.heldout, c.reward, c.sampling))

    def run(self) -> dict:
        """Run from the current step to `config.steps`; returns start/end held-out accuracy and paths."""
        from tqdm import tqdm

        c = self.config
        if self.start_acc is None:
            self.start_acc = self.evaluate()
            self.metrics.log({"step": 0, "heldout_acc": self.start_acc})  # the curve starts at the checkpoint
        print(f"held-out accuracy at start: {self.start_acc:.3f} ({len(self.heldout)} tasks)", file=sys.stderr)
        bar = tqdm(range(self.start_step + 1, c.steps + 1), desc="rl", file=sys.stderr, disable=not c.progress,
                   initial=self.start_step, total=c.steps)
        row: dict = {}
        for step in bar:
            row = self.step(step)
            if c.eval_every and step % c.eval_every == 0 and step != c.steps:
                row["heldout_acc"] = self.evaluate()
            if step == c.steps:
                row["heldout_acc"] = self.evaluate()
            self.metrics.log(row)
            if step % c.checkpoint_every == 0 or step == c.steps:
                self.save(step)
            bar.set_postfix(reward=f"{row['reward_mean']:.3f}", pass_rate=f"{row['pass_rate']:.2f}")
        self.metrics.close()
        end_acc = row.get("heldout_acc", self.start_acc) if row else self.start_acc
        print(f"held-out accuracy at end: {end_acc:.3f} (start {self.start_acc:.3f})", file=sys.stderr)
        plot = plot_run(c.run_dir)
        return {"start_acc": self.start_acc, "end_acc": end_acc, "steps": c.steps,
                "run_dir": str(c.run_dir), "plot": str(plot)}

    def save(self, step: int) -> str:
        # prompts already drawn for a prefetched next step are drawn again after a resume
        cursor = self.stream.cursor - (self.config.prompts_per_step if self._prefetched else 0)
        extra = {"cursor": cursor, "start_acc": self.start_acc,
                 "config": self.config.model_dump(mode="json")}
        return self.ray.get(self.learner.save_checkpoint.remote(str(self.config.run_dir), step, extra,
                                                                 self.config.keep_checkpoints))

    def step(self, step: int) -> dict:
        """One RL step; returns its metrics row.

        With `overlap`, the rollouts of step+1 run (on the weights the actors hold) while the learner
        trains on step's samples: one step off-policy, recorded in each sample's policy_version.
        """
        c, ray = self.config, self.ray
        t0 = time.perf_counter()
        if self._prefetched is None:
            self._sync_weights()
            self._prefetched = self._generate(step)
        samples, timeouts, gen_s = self._prefetched
        self._prefetched = None
        self.rollout_log.write(step, samples)
        learn = self.learner.step.remote(samples)
        if c.overlap and step < c.steps:
            self._prefetched = self._generate(step + 1)
        stats = ray.get(learn)
        if c.overlap:
            self._sync_weights()
        step_s = time.perf_counter() - t0
        rewards = [s.reward for s in samples]
        mean = sum(rewards) / len(rewards)
        n_tokens = sum(len(s.completion_ids) for s in samples)
        return {
            "step": step, "reward_mean": mean,
            "reward_std": math.sqrt(sum((r - mean) ** 2 for r in rewards) / len(rewards)),
            "pass_rate": sum(s.correct for s in samples) / len(samples),
            "response_len": n_tokens / len(samples), "tokens_per_s": n_tokens / gen_s,
            "samples_per_s": len(samples) / step_s, "step_s": step_s,
            "policy_version": min(s.policy_version for s in samples), "reward_timeouts": timeouts, **stats,
        }

    def _sync_weights(self) -> None:
        # one put by the learner; every rollout actor fetches the same object
        self._weights = self.ray.get(self.learner.publish.remote())
        self.synced = set()
        self._push_weights()

    def _push_weights(self, grace_s: float = 5.0) -> None:
        """Give the current weights to the rollout actors that lack them; returns once one has them.

        A lost actor (restarting, or waiting for a node) is left out of this step after `grace_s`;
        the next sync tries it again.
        """
        refs, version = self._weights
        todo = {self.rollouts[i].set_weights.remote(refs, version): i
                for i in range(len(self.rollouts)) if i not in self.synced}
        waited, until = 0.0, None  # `until`: how long the rest may take once one actor has the weights
        while todo:
            if self.synced and until is None:
                until = time.monotonic() + grace_s
            timeout = 30.0 if until is None else until - time.monotonic()
            if timeout <= 0:
                break
            ready, _ = self.ray.wait(list(todo), num_returns=1, timeout=timeout)
            for ref in ready:
                i = todo.pop(ref)
                try:
                    self.ray.get(ref)
                    self.synced.add(i)
                except Exception as exc:  # its node is gone: it restarts; ask again
                    log.warning("rollout actor %d lost (%s); retrying the weights on it", i, type(exc).__name__)
                    time.sleep(0.5)
                    todo[self.rollouts[i].set_weights.remote(refs, version)] = i
            if not ready and until is None:
                waited += timeout
                print(f"waiting {waited:.0f} s for a rollout actor to take the weights (restarting, or no node "
                      "has room for it)", file=sys.stderr)
        self.last_versions = [version] * len(self.synced)

    def _generate(self, step: int) -> tuple[list[Sample], int, float]:
        t0 = time.perf_counter()
        samples, timeouts = self._rollout_and_score(step, self.stream.next_batch(self.config.prompts_per_step))
        return samples, timeouts, time.perf_counter() - t0

    def _rollout_and_score(self, step: int, tasks: list[Task]) -> tuple[list[Sample], int]:
        c, ray = self.config, self.ray
        live = sorted(self.synced)
        n_chunks = min(len(tasks), c.rollout_chunks * len(live))
        bounds = [round(i * len(tasks) / n_chunks) for i in range(n_chunks + 1)]
        args = [(tasks[bounds[i]: bounds[i + 1]], c.grpo.group_size, c.sampling,
                 c.seed * 1_000_003 + step * 1009 + i, bounds[i])  # same step, same samples after a resume
                for i in range(n_chunks)]
        pending = {}
        for i in range(n_chunks):
            a = live[i % len(live)]
            pending[self.rollouts[a].rollout.remote(*args[i])] = (i, a)
        self.on_rollouts_submitted(step)
        scoring = {}
        while pending:  # score each chunk as soon as it is generated, while the others still generate
            ready, _ = ray.wait(list(pending), num_returns=1)
            i, a = pending.pop(ready[0])
            try:
                chunk = ray.get(ready[0])
            except Exception as exc:
                from ray.exceptions import RayTaskError

                if isinstance(exc, RayTaskError):  # the rollout code itself failed: not a lost node
                    raise
                b = self._another_rollout_actor(a)
                log.warning("step %d: rollout chunk %d lost with rollout actor %d (%s); redone on actor %d",
                            step, i, a, type(exc).__name__, b)
                pending[self.rollouts[b].rollout.remote(*args[i])] = (i, b)  # same seed: the same samples
                continue
            rewarder = self.rewarders[i % len(self.rewarders)]
            scoring[rewarder.score.remote(chunk)] = (i % len(self.rewarders), chunk)
        return self._collect_rewards(scoring)

    def on_rollouts_submitted(self, step: int) -> None:
        """Called once a step's rollout chunks are in flight (a subclass can watch or inject a fault here)."""

    def _another_rollout_actor(self, lost: int) -> int:
        """A rollout actor with this step's weights, other than `lost` (which is re-synced next step)."""
        self.synced.discard(lost)
        if not self.synced:
            self._push_weights()
        return min(self.synced)

    def _collect_rewards(self, scoring: dict) -> tuple[list[Sample], int]:
        # Backstop for a reward call that ignores its own limits: the worst case is every sample timing out.
        ray = self.ray
        longest = max(len(chunk) for _, chunk in scoring.values())
        deadline = time.monotonic() + self.config.reward.timeout_s * (longest + 1) + 5
        samples, timeouts, scoring = [], 0, dict(scoring)
        while scoring:
            ready, late = ray.wait(list(scoring), num_returns=len(scoring), timeout=max(deadline - time.monotonic(), 0))
            for ref in ready:
                idx, chunk = scoring.pop(ref)
                try:
                    samples.extend(ray.get(ref))
                except Exception as exc:  # its node is gone: score the chunk again (a restarted or other rewarder)
                    nxt = (idx + 1) % len(self.rewarders)
                    log.warning("reward actor %d lost (%s); its chunk is scored by reward actor %d",
                                idx, type(exc).__name__, nxt)
                    scoring[self.rewarders[nxt].score.remote(chunk)] = (nxt, chunk)
            if not late or time.monotonic() < deadline:
                continue
            for ref in late:  # kill the hung worker and score its samples 0; the step goes on
                idx, chunk = scoring.pop(ref)
                ray.kill(self.rewarders[idx])
                self.rewarders[idx] = _new_rewarder(self._reward_args)
                timeouts += len(chunk)
                for s in chunk:
                    s.reward, s.correct = 0.0, False
                samples.extend(chunk)
        samples.sort(key=lambda s: s.group)
        return samples, timeouts

    def shutdown(self) -> None:
        for a in [self.learner, *self.rollouts, *self.rewarders]:
            self.ray.kill(a)


class RolloutLog:
    """RUN_DIR/rollouts.jsonl: every sample (step, policy version, prompt id, text, reward), for audits of
    what the reward actually paid for. On resume, lines of steps after the checkpoint are dropped."""

    def __init__(self, path: Path, keep_through: int):
        self.path = path
        lines = path.read_text().splitlines() if path.is_file() and keep_through > 0 else []
        kept = [ln for ln in lines if json.loads(ln)["step"] <= keep_through]
        path.write_text("".join(ln + "\n" for ln in kept))

    def write(self, step: int, samples: list[Sample]) -> None:
        with self.path.open("a") as fh:
            for s in samples:
                fh.write(json.dumps({"step": step, "version": s.policy_version, "task": s.task.id, "group": s.group,
                                     "text": s.text, "reward": s.reward, "correct": s.correct}) + "\n")


# Rollout and reward actors reserve CPUs (a rollout actor its torch threads), so Ray spreads them over
# the nodes; they are restarted by Ray when their node is lost (work in flight is redone by the loop).
WORKER_OPTIONS = {"max_restarts": -1, "max_task_retries": 0, "scheduling_strategy": "SPREAD"}


def _new_rewarder(args):
    from .actors import RewardActor

    return RewardActor.options(**WORKER_OPTIONS, num_cpus=1).remote(*args)


def _learner_placement(ray) -> dict:
    """On a cluster with GPUs the learner gets one through a placement group; on CPU it runs anywhere."""
    if ray.cluster_resources().get("GPU", 0) < 1:
        return {}
    from ray.util.placement_group import placement_group
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    pg = placement_group([{"GPU": 1, "CPU": 1}], strategy="STRICT_PACK")
    ray.get(pg.ready())
    return {"num_gpus": 1, "scheduling_strategy": PlacementGroupSchedulingStrategy(pg)}


def run_rl(config: RLConfig) -> dict:
    """Start (or join) Ray, run the job, and shut its actors down."""
    import os

    from ..pool import init_ray

    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    init_ray(config.address, num_cpus=max(4, config.rollout_workers + config.reward_workers + 1))
    Path(config.run_dir).mkdir(parents=True, exist_ok=True)
    run = RLRun(config)
    try:
        return run.run()
    finally:
        run.shutdown()
