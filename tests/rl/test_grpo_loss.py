"""GRPO losses against values computed by hand."""
from __future__ import annotations

import math

import pytest
import torch

from core_model.grpo import (
    GRPOConfig,
    aggregate,
    group_advantages,
    grpo_loss,
    informative_groups,
    k3_kl,
    overlong_shaping,
    token_logprobs,
)


def test_grpo_advantage_is_normalised_by_unbiased_std():
    # rewards 1,0,0,1: mean 0.5, unbiased std sqrt(1/3) = 0.57735
    adv = group_advantages(torch.tensor([[1.0, 0.0, 0.0, 1.0]]), GRPOConfig(std_eps=0.0))
    s = 0.5 / math.sqrt(1 / 3)
    assert torch.allclose(adv, torch.tensor([[s, -s, -s, s]]))


def test_dr_grpo_advantage_has_no_std_division():
    adv = group_advantages(torch.tensor([[3.0, 1.0], [2.0, 2.0]]), GRPOConfig.preset("dr_grpo"))
    assert torch.allclose(adv, torch.tensor([[1.0, -1.0], [0.0, 0.0]]))


def test_rloo_advantage_is_leave_one_out():
    # r = 1,0,0: baseline for first = (0+0)/2 = 0 -> 1; others: (1+0)/2 = .5 -> -.5
    adv = group_advantages(torch.tensor([[1.0, 0.0, 0.0]]), GRPOConfig.preset("rloo"))
    assert torch.allclose(adv, torch.tensor([[1.0, -0.5, -0.5]]))


def test_all_equal_group_gets_zero_advantage_and_is_dropped_by_dynamic_sampling():
    rewards = torch.tensor([[1.0, 1.0, 1.0], [0.0, 1.0, 0.0]])
    assert torch.equal(group_advantages(rewards, GRPOConfig())[0], torch.zeros(3))
    assert informative_groups(rewards).tolist() == [False, True]


def test_advantage_rejects_flat_rewards_with_a_clear_message():
    with pytest.raises(ValueError, match="n_groups, G"):
        group_advantages(torch.tensor([1.0, 0.0]), GRPOConfig())


def test_k3_kl_matches_formula_and_is_zero_at_equality():
    p, r = torch.tensor([-1.0]), torch.tensor([-2.0])
    expected = math.exp(-1.0) - (-1.0) - 1  # exp(r-p) - (r-p) - 1
    assert k3_kl(p, r).item() == pytest.approx(expected)
    assert k3_kl(p, p).item() == 0.0


def test_clipping_positive_and_negative_advantages():
    cfg = GRPOConfig(kl_coef=0.0, clip_eps_low=0.2, clip_eps_high=0.28)
    old = torch.zeros(2, 1)
    new = torch.log(torch.tensor([[1.5], [0.5]]))  # ratios 1.5 and 0.5
    mask = torch.ones(2, 1)
    # seq 0: A=+1, ratio 1.5 -> clipped to 1.28 -> -1.28; seq 1: A=-1, ratio .5 -> min(-.5, -.8) -> .8
    loss, stats = grpo_loss(new, old, torch.tensor([1.0, -1.0]), mask, cfg)
    assert loss.item() == pytest.approx((-1.28 + 0.8) / 2)
    assert stats["clip_frac"] == pytest.approx(1.0)
    # inside the trust region nothing is clipped: ratio 1.1 with A=+2 -> -2.2
    loss, stats = grpo_loss(torch.log(torch.tensor([[1.1]])), torch.zeros(1, 1), torch.tensor([2.0]),
                            torch.ones(1, 1), cfg)
    assert loss.item() == pytest.approx(-2.2)
    assert stats["clip_frac"] == 0.0


def test_clipped_tokens_get_no_gradient():
    cfg = GRPOConfig(kl_coef=0.0)
    new = torch.log(torch.tensor([[2.0, 1.0]])).requires_grad_()
    loss, _ = grpo_loss(new, torch.zeros(1, 2), torch.tensor([1.0]), torch.ones(1, 2), cfg)
    loss.backward()
    # token 0 is clipped (ratio 2 > 1.2); token 1: d(-ratio/2)/dlogp = -ratio/2 = -0.5
    assert new.grad[0].tolist() == pytest.approx([0.0, -0.5])


def test_kl_term_is_added_with_its_coefficient():
    cfg = GRPOConfig(kl_coef=0.5)
    logp = torch.tensor([[-1.0]])
    ref = torch.tensor([[-2.0]])
    loss, stats = grpo_loss(logp, logp, torch.tensor([0.0]), torch.ones(1, 1), cfg, ref_logprobs=ref)
    kl = math.exp(-1.0) + 1.0 - 1
    assert stats["kl"] == pytest.approx(kl)
    assert loss.item() == pytest.approx(0.5 * kl)


def test_kl_needs_reference_unless_coefficient_is_zero():
    x = torch.zeros(1, 1)
    with pytest.raises(ValueError, match="ref_logprobs"):
        grpo_loss(x, x, torch.ones(1), torch.ones(1, 1), GRPOConfig(kl_coef=0.1))
    loss, _ = grpo_loss(x, x, torch.ones(1), torch.ones(1, 1), GRPOConfig(kl_coef=0.0))
    assert loss.item() == -1.0


# values [[1,2,3],[4,_,_]] with the second row one token long
VALUES = torch.tensor([[1.0, 2.0, 3.0], [4.0, 100.0, 100.0]])
MASK = torch.tensor([[1, 1, 1], [1, 0, 0]])


def test_seq_mean_token_mean_weighs_sequences_equally():
    assert aggregate(VALUES, MASK, GRPOConfig()).item() == pytest.approx((2.0 + 4.0) / 2)


def test_token_mean_weighs_tokens_equally():
    cfg = GRPOConfig.preset("dapo")
    assert aggregate(VALUES, MASK, cfg).item() == pytest.approx(10.0 / 4)


def test_token_sum_norm_divides_by_a_constant():
    assert aggregate(VALUES, MASK, GRPOConfig.preset("dr_grpo")).item() == pytest.approx(10.0 / (2 * 3))
    cfg = GRPOConfig.preset("dr_grpo", norm_length=5)
    assert aggregate(VALUES, MASK, cfg).item() == pytest.approx(10.0 / (2 * 5))


def test_overlong_shaping_is_linear_inside_the_buffer():
    cfg = GRPOConfig(overlong_buffer=4, overlong_penalty=1.0)
    got = overlong_shaping(torch.tensor([3, 6, 8, 10]), max_length=10, config=cfg)
    assert got.tolist() == pytest.approx([0.0, 0.0, -0.5, -1.0])
    assert overlong_shaping(torch.tensor([10]), 10, GRPOConfig()).tolist() == [0.0]


def test_token_logprobs_and_entropy():
    logits = torch.tensor([[[0.0, 0.0], [math.log(3.0), 0.0]]])  # [1,2,2]
    logp, ent = token_logprobs(logits, torch.tensor([[1, 0]]))
    assert logp[0].tolist() == pytest.approx([math.log(0.5), math.log(0.75)])
    h2 = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    assert ent[0].tolist() == pytest.approx([math.log(2.0), h2])


def test_presets_and_validation():
    assert GRPOConfig.preset("dapo").clip_eps_high == 0.28
    with pytest.raises(ValueError, match="unknown GRPO variant"):
        GRPOConfig.preset("ppo")
    with pytest.raises(ValueError):
        GRPOConfig(clip_eps_low=1.5)
