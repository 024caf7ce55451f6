"""The learner and rollout worker as plain classes on the embedded tiny checkpoint (no Ray)."""
from __future__ import annotations

import copy

import pytest
import torch

from core_model import EMBEDDED_TINY_PATH
from core_model.grpo import GRPOConfig
from workers.rl.config import SamplingConfig, tiny_preset
from workers.rl.learner import Learner
from workers.rl.policy import Sample, pack, sequence_logprobs
from workers.rl.rewards import RewardFn
from workers.rl.rollout import RolloutWorker
from workers.rl.tasks import Task, make_tiny_tasks

torch.set_num_threads(1)


def config(**grpo):
    return tiny_preset(grpo=GRPOConfig(group_size=2, **grpo), lr=1e-4, run_dir="unused")


def fixed_samples(learner: Learner, rewards=(1.0, 0.0)) -> list[Sample]:
    """One prompt, two hand-written completions with the given rewards."""
    tok = learner.tokenizer
    task = Task(id="t", kind="math", prompt="12+47=", answer="59")  # in the tiny task distribution
    prompt = tok.encode(task.prompt, add_bos=True)
    out = []
    for text, r in zip(("59", "58"), rewards):
        ids = tok.encode(text) + [tok.eos_id]
        out.append(Sample(task=task, group=0, prompt_ids=prompt, completion_ids=ids, text=text, finished=True,
                          policy_version=0, reward=r))
    return out


def completion_logprob(learner: Learner, samples: list[Sample]) -> list[float]:
    ids, attn, targets, mask = pack(samples, learner.pad_id)
    with torch.no_grad():
        logp, _ = sequence_logprobs(learner.model, ids, attn, targets)
    return (logp * mask).sum(1).tolist()


def test_grpo_steps_move_probability_toward_the_rewarded_completion():
    learner = Learner(config(kl_coef=0.0))
    samples = fixed_samples(learner)
    before = completion_logprob(learner, samples)
    for _ in range(3):
        stats = learner.step(samples)
    after = completion_logprob(learner, samples)
    # the rewarded completion gains probability, and gains it relative to the unrewarded one
    assert after[0] > before[0] and after[0] - after[1] > before[0] - before[1] + 0.1
    assert learner.version == 3
    assert stats["entropy"] > 0 and stats["grad_norm"] > 0 and learner.reference is None


def test_kl_reference_is_kept_only_when_needed_and_reported():
    learner = Learner(config(kl_coef=0.1))
    samples = fixed_samples(learner)
    first = learner.step(samples)
    second = learner.step(samples)
    assert learner.reference is not None
    assert first["kl"] == pytest.approx(0.0, abs=1e-6)  # policy == reference before the first update
    assert second["kl"] > 0


def test_dynamic_sampling_drops_all_equal_groups():
    learner = Learner(config(kl_coef=0.0, dynamic_sampling=True))
    stats = learner.step(fixed_samples(learner, rewards=(1.0, 1.0)))
    assert stats["groups_dropped"] == 1 and stats["loss"] == 0.0
    assert learner.version == 1


def test_rollout_worker_samples_at_the_synced_version_and_matches_learner_weights():
    learner = Learner(config(kl_coef=0.0))
    learner.step(fixed_samples(learner))
    worker = RolloutWorker(EMBEDDED_TINY_PATH)
    assert worker.set_weights(learner.weights(), learner.version) == 1
    tasks = make_tiny_tasks(n=40)[:3]
    samples = worker.rollout(tasks, 4, SamplingConfig(max_new_tokens=8), seed=1)
    assert len(samples) == 12 and {s.policy_version for s in samples} == {1}
    assert [s.group for s in samples] == [0] * 4 + [1] * 4 + [2] * 4
    # logprobs the sampler reported (temperature 1) match the learner's recomputation
    ids, attn, targets, mask = pack(samples[:2], learner.pad_id)
    with torch.no_grad():
        logp, _ = sequence_logprobs(learner.model, ids, attn, targets)
    got = logp[0][mask[0]].tolist()
    assert got == pytest.approx(samples[0].logprobs, abs=1e-4)
    # scoring with the real reward, then a step, works on sampled data
    fn = RewardFn()
    for s in samples:
        r = fn(s.task, s.text, s.finished)
        s.reward, s.correct = r.reward, r.correct
    assert learner.step(samples)["learner_s"] > 0


def test_state_round_trip_continues_identically():
    a = Learner(config(kl_coef=0.0))
    samples = fixed_samples(a)
    a.step(samples)
    weights, state = a.weights(), copy.deepcopy(a.state())  # as if read back from disk
    b = Learner(config(kl_coef=0.0))
    b.load_state(weights, state)
    a.step(samples)
    b.step(samples)
    assert b.version == a.version == 2
    for (k, va), vb in zip(a.model.state_dict().items(), b.model.state_dict().values()):
        assert torch.equal(va, vb), k


def test_pass_at_k_at_temperature_zero_is_greedy_accuracy():
    from workers.rl.evaluate import heldout_accuracy, pass_at_k
    from workers.rl.policy import load_policy
    from workers.rl.tasks import split_tasks

    model, tok = load_policy(EMBEDDED_TINY_PATH)
    held = split_tasks(make_tiny_tasks())[1][:40]
    sampling = tiny_preset().sampling
    greedy = heldout_accuracy(model, tok, held, RewardFn(), sampling)
    # k identical greedy samples: pass@k and the mean both equal greedy accuracy
    assert pass_at_k(model, tok, held, RewardFn(), sampling.model_copy(update={"temperature": 0.0}), 3) == (greedy, greedy)
    pk, mean = pass_at_k(model, tok, held, RewardFn(), sampling, 4)
    assert 0.0 <= mean <= pk <= 1.0


def test_shipped_checkpoint_can_work_it_out_but_answers_directly():
    """The start GRPO needs: greedy rarely opens a worked solution, yet carries one out when it is opened."""
    from workers.rl.evaluate import heldout_accuracy
    from workers.rl.policy import load_policy, sample
    from workers.rl.tasks import split_tasks

    model, tok = load_policy(EMBEDDED_TINY_PATH)
    adds = [t for t in split_tasks(make_tiny_tasks())[1] if t.kind == "math" and "+" in t.prompt][:40]
    greedy = SamplingConfig(max_new_tokens=24, temperature=0.0)
    direct = sample(model, tok, adds, 1, greedy, seed=0, version=0)
    assert sum(s.text.startswith("[") for s in direct) <= 10
    opened = [t.model_copy(update={"prompt": t.prompt + "["}) for t in adds]
    worked = sum(RewardFn()(t, "[" + s.text).correct for t, s in zip(adds, sample(model, tok, opened, 1, greedy, 0, 0)))
    assert worked / len(adds) >= heldout_accuracy(model, tok, adds, RewardFn(), greedy) + 0.3
