"""End to end on real Ray: tiny model, generated tasks, real math checker + sandbox, checkpoint, resume."""
from __future__ import annotations

import json

import pytest

from core_model.grpo import GRPOConfig
from workers.rl.checkpoint import list_checkpoints, load_trainer_state
from workers.rl.config import SamplingConfig, tiny_preset
from workers.rl.loop import RLRun, load_prompt_set
from workers.rl.metrics import read_metrics
from workers.rl.tasks import PromptStream

pytestmark = pytest.mark.ray


def small_config(run_dir, steps, resume=False):
    return tiny_preset(
        run_dir=run_dir, steps=steps, prompts_per_step=4, eval_size=8, checkpoint_every=1, resume=resume,
        grpo=GRPOConfig(group_size=4, kl_coef=0.0), sampling=SamplingConfig(max_new_tokens=8),
        rollout_chunks=2, progress=False, overlap=True,
    )


def run(config) -> dict:
    r = RLRun(config)
    try:
        return r.run()
    finally:
        r.shutdown()


def rollouts(run_dir) -> list[dict]:
    return [json.loads(x) for x in (run_dir / "rollouts.jsonl").read_text().splitlines()]


def test_loop_syncs_weights_checkpoints_and_resumes_with_the_same_data(ray_cluster, tmp_path):
    run_dir = tmp_path / "run"
    first = run(small_config(run_dir, steps=2))
    assert 0.0 <= first["start_acc"] <= 1.0 and (run_dir / "curves.png").stat().st_size > 0
    assert [p.name for p in list_checkpoints(run_dir)] == ["step_000001", "step_000002"]
    state = load_trainer_state(list_checkpoints(run_dir)[-1])
    assert state["step"] == 2 and state["cursor"] == 8 and state["version"] == 2
    # step 1's checkpoint was taken while step 2's prompts were already drawn: its cursor excludes them
    assert load_trainer_state(list_checkpoints(run_dir)[0])["cursor"] == 4

    # a later step left behind by a killed run is discarded on resume
    with (run_dir / "rollouts.jsonl").open("a") as fh:
        fh.write(json.dumps({"step": 3, "version": 9, "task": "stale"}) + "\n")
    second = run(small_config(run_dir, steps=3, resume=True))
    assert second["start_acc"] == first["start_acc"]  # carried in the checkpoint, not re-measured

    rows = rollouts(run_dir)
    # overlap: step 2 was generated (on version 0) while the learner trained on step 1; after the
    # resume nothing is prefetched, so step 3 samples the restored, synced version 2
    assert {(r["step"], r["version"]) for r in rows} == {(1, 0), (2, 0), (3, 2)}
    # step 3 after the resume used exactly the prompts an uninterrupted run would have used
    train, _ = load_prompt_set(small_config(run_dir, steps=3))
    stream = PromptStream(train, seed=0)
    expected = [[t.id for t in stream.next_batch(4)] for _ in range(3)]
    for step in (1, 2, 3):
        got = list(dict.fromkeys(r["task"] for r in rows if r["step"] == step))
        assert got == expected[step - 1]
    assert all(isinstance(r["reward"], float) for r in rows)
    metrics = read_metrics(run_dir / "metrics.csv")
    assert [m["step"] for m in metrics] == [0, 1, 2, 3]  # step 0: the starting accuracy
    assert "heldout_acc" in metrics[-1] and metrics[-1]["samples_per_s"] > 0
    assert list_checkpoints(run_dir)[-1].name == "step_000003"


def test_a_hung_reward_call_is_abandoned_scored_zero_and_its_worker_replaced(ray_cluster, tmp_path):
    import ray

    from workers.rl.policy import Sample
    from workers.rl.rewards import RewardConfig
    from workers.rl.tasks import Task

    @ray.remote
    class Hangs:  # a reward worker stuck in a call that ignores its own limits
        def score(self, samples):
            import time

            time.sleep(600)

    run = object.__new__(RLRun)  # only the reward-collection part of a run
    run.ray = ray
    run.config = tiny_preset(reward=RewardConfig(timeout_s=0.5), run_dir=tmp_path)
    run._reward_args = (run.config.reward, None)
    stuck = Hangs.remote()
    run.rewarders = [stuck]
    task = Task(id="t", kind="math", prompt="1+1=", answer="2")
    chunk = [Sample(task=task, group=0, prompt_ids=[1], completion_ids=[2], text="2", finished=True,
                    policy_version=0, reward=1.0, correct=True)]
    samples, timeouts = run._collect_rewards({stuck.score.remote(chunk): (0, chunk)})
    assert timeouts == 1 and samples[0].reward == 0.0 and not samples[0].correct
    assert run.rewarders[0] is not stuck
    fresh = ray.get(run.rewarders[0].score.remote(chunk))  # the replacement scores for real
    assert fresh[0].reward == 1.0
