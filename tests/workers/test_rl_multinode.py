"""RL on a multi-node Ray cluster on 127.0.0.1: a rollout node's raylet killed mid-run costs at most the step in flight."""
import json
import os
import signal
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from svc_helpers import LoopbackCluster  # noqa: E402

from core_model.grpo import GRPOConfig  # noqa: E402
from workers.rl.config import SamplingConfig, tiny_preset  # noqa: E402
from workers.rl.loop import RLRun, load_prompt_set  # noqa: E402
from workers.rl.tasks import PromptStream  # noqa: E402

pytestmark = pytest.mark.ray
STEPS, PER_STEP = 4, 4


def config(run_dir):
    return tiny_preset(run_dir=run_dir, steps=STEPS, prompts_per_step=PER_STEP, eval_size=4, checkpoint_every=1,
                       grpo=GRPOConfig(group_size=2, kl_coef=0.0), sampling=SamplingConfig(max_new_tokens=48),
                       rollout_workers=2, reward_workers=1, rollout_chunks=2, progress=False, overlap=True)


class KillsARolloutNode(RLRun):
    """A real run that loses a rollout actor's node (raylet and process SIGKILLed) while step `at`'s chunks run."""

    at, cluster, victim, pid, killed = 3, None, None, None, False

    def aim(self) -> None:
        """Pick the victim now: at the kill, any call to the actors would wait for the chunks to finish."""
        import ray

        learner = ray.get(self.learner.node.remote())
        nodes = ray.get([r.node.remote() for r in self.rollouts])
        a = next(i for i, n in enumerate(nodes) if n != learner)
        self.victim, self.pid = nodes[a], ray.get(self.rollouts[a].pid.remote())

    def on_rollouts_submitted(self, step: int) -> None:
        if step == self.at and not self.killed:
            self.killed = True
            self.cluster.kill_raylet(self.victim)
            os.kill(self.pid, signal.SIGKILL)


def test_killing_a_rollout_node_mid_step_costs_only_that_steps_chunk(tmp_path, caplog):
    import logging

    import ray

    caplog.set_level(logging.WARNING, logger="workers.rl.loop")
    run_dir = tmp_path / "run"
    with LoopbackCluster(nodes=4, cpus=1) as cluster:  # learner, 2 rollout, 1 reward actor
        run = KillsARolloutNode(config(run_dir))
        run.cluster = cluster
        run.aim()
        try:
            assert len(set(ray.get([r.node.remote() for r in run.rollouts]))) == 2  # one CPU each: two nodes
            result = run.run()
            assert result["steps"] == STEPS
            cluster.add_node()  # capacity returns: the lost actor restarts there
            moved = ray.get([r.node.remote() for r in run.rollouts], timeout=120)
            victim = run.victim
        finally:
            run.shutdown()
    assert victim not in moved  # the lost node's actor was restarted elsewhere
    assert "redone on actor" in caplog.text  # the chunk in flight on the lost node was generated again
    rows = [json.loads(x) for x in (run_dir / "rollouts.jsonl").read_text().splitlines()]
    assert sorted({r["step"] for r in rows}) == list(range(1, STEPS + 1))
    versions = [min(r["version"] for r in rows if r["step"] == s) for s in range(1, STEPS + 1)]
    assert versions == [0, 0, 1, 2]  # overlap: one step off-policy, as without a fault; never older
    train, _ = load_prompt_set(config(run_dir))
    stream = PromptStream(train, seed=0)
    expected = [[t.id for t in stream.next_batch(PER_STEP)] for _ in range(STEPS)]
    for step in range(1, STEPS + 1):  # the same prompts, in the same order, as a fault-free run
        assert list(dict.fromkeys(r["task"] for r in rows if r["step"] == step)) == expected[step - 1]
