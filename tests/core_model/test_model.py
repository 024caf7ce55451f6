"""Model internals: MLA naive vs absorbed, MoE dispatch vs dense, balance loss and bias update by hand."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from core_model import ModelConfig, RoutingStats, Transformer
from core_model.cache import KVCache
from core_model.model import MoE

torch.set_num_threads(1)

MLA_CFG = dict(hidden_size=32, num_attention_heads=4, kv_lora_rank=16, qk_nope_head_dim=8, qk_rope_head_dim=4,
               v_head_dim=6, vocab_size=64, intermediate_size=48, moe_intermediate_size=16, n_routed_experts=6,
               num_experts_per_tok=2, num_hidden_layers=2)


@pytest.mark.parametrize("q_lora_rank, yarn", [(None, False), (12, True)])
def test_mla_naive_and_absorbed_agree(q_lora_rank, yarn):
    rope = {"type": "yarn", "factor": 8.0, "original_max_position_embeddings": 16, "mscale": 1.0,
            "mscale_all_dim": 1.0} if yarn else None
    cfg = ModelConfig(**MLA_CFG, q_lora_rank=q_lora_rank, rope_scaling=rope)
    torch.manual_seed(0)
    model = Transformer(cfg).eval()
    x = torch.randint(0, 64, (3, 10))
    mask = torch.ones(3, 10, dtype=torch.long)
    mask[1, :4] = 0  # a left-padded row
    with torch.no_grad():
        naive = model(x, attention_mask=mask, absorb=False)
        absorbed = model(x, attention_mask=mask, absorb=True)
        torch.testing.assert_close(absorbed, naive, atol=1e-5, rtol=0)
        # Incremental decode (absorbed, one token at a time through the latent cache) reproduces the prefill.
        cache = KVCache(3, 10)
        model(x[:, :6], attention_mask=mask[:, :6], cache=cache)
        steps = [model(x[:, i : i + 1], cache=cache)[:, 0] for i in range(6, 10)]
    torch.testing.assert_close(torch.stack(steps, 1), naive[:, 6:], atol=1e-5, rtol=0)


def test_mla_cache_holds_only_latent_and_rope_key():
    cfg = ModelConfig(**MLA_CFG)
    model = Transformer(cfg).eval()
    cache = KVCache(2, 12)
    with torch.no_grad():
        model(torch.randint(0, 64, (2, 5)), cache=cache)
    assert set(cache.layers) == {0, 1}
    for c_kv, k_pe in cache.layers.values():
        assert c_kv.shape == (2, 12, cfg.kv_lora_rank) and k_pe.shape == (2, 12, cfg.qk_rope_head_dim)
    assert cache.nbytes() == 2 * 2 * 12 * (16 + 4) * 4
    with pytest.raises(ValueError, match="larger max_len"):
        model(torch.randint(0, 64, (2, 8)), cache=cache)


def _dense_moe(moe: MoE, x: torch.Tensor) -> torch.Tensor:
    """Reference: every expert on every token, combined with the gate's weights (zero for unselected)."""
    weights, idx, _ = moe.gate(x)
    full = torch.zeros(x.shape[0], moe.n_experts).scatter(1, idx, weights)
    outs = torch.stack([e(x) for e in moe.experts], 1)  # [T, E, d]
    y = (full[..., None] * outs).sum(1)
    return y + moe.shared_experts(x)


@pytest.mark.parametrize("overrides", [
    dict(model_type="deepseek_v2", topk_method="greedy"),
    dict(model_type="deepseek_v2", topk_method="group_limited_greedy", n_group=3, topk_group=2,
         routed_scaling_factor=2.0),
    dict(model_type="deepseek_v3", n_group=2, topk_group=1, norm_topk_prob=True, routed_scaling_factor=2.5),
])
def test_moe_dispatch_equals_dense_reference(overrides):
    cfg = ModelConfig(**{**MLA_CFG, **overrides})
    torch.manual_seed(1)
    model = Transformer(cfg).eval()
    moe = model.model.layers[1].mlp
    assert isinstance(moe, MoE)
    if cfg.scoring_func == "sigmoid":
        moe.gate.e_score_correction_bias.normal_(0, 0.1)
    x = torch.randn(2, 9, 32)
    with torch.no_grad():
        torch.testing.assert_close(moe(x).view(-1, 32), _dense_moe(moe, x.view(-1, 32)), atol=1e-6, rtol=1e-5)


def test_v3_group_routing_respects_groups_and_bias():
    cfg = ModelConfig(**{**MLA_CFG, "model_type": "deepseek_v3", "n_group": 3, "topk_group": 1,
                         "num_experts_per_tok": 2})
    gate = Transformer(cfg).model.layers[1].mlp.gate
    with torch.no_grad():
        gate.weight.zero_()
        gate.e_score_correction_bias.copy_(torch.tensor([0.0, 0.0, 0.3, 0.0, 0.1, 0.1]))
        _, idx, scores = gate(torch.randn(4, 32))
    # Groups {0,1},{2,3},{4,5}: top-2 sums 0, 0.3, 0.2 -> only group 1 is eligible, so experts 2 and 3.
    assert sorted(idx[0].tolist()) == [2, 3]
    torch.testing.assert_close(scores, torch.full((4, 6), 0.5))


def _two_expert_moe(model_type: str, seq_aux: bool, alpha: float) -> MoE:
    cfg = ModelConfig(model_type=model_type, hidden_size=2, num_attention_heads=1, n_routed_experts=2,
                      num_experts_per_tok=1, n_shared_experts=0, moe_intermediate_size=2, first_k_dense_replace=0,
                      num_hidden_layers=1, kv_lora_rank=2, qk_nope_head_dim=2, qk_rope_head_dim=2, v_head_dim=2,
                      n_group=1, topk_group=1, aux_loss_alpha=alpha, seq_aux=seq_aux)
    moe = MoE(cfg)
    with torch.no_grad():
        moe.gate.weight.copy_(torch.eye(2))
    return moe


@pytest.mark.parametrize("seq_aux", [False, True])
def test_v2_balance_loss_by_hand(seq_aux):
    moe = _two_expert_moe("deepseek_v2", seq_aux, alpha=0.1).train()
    ln3 = math.log(3.0)
    # Softmax scores [0.75, 0.25] for both tokens: both go to expert 0, f = [2, 0], P = [0.75, 0.25].
    moe(torch.tensor([[[ln3, 0.0], [ln3, 0.0]]]), routing=(stats := RoutingStats()))
    assert stats.aux_loss().item() == pytest.approx(0.1 * (2 * 0.75 + 0 * 0.25))
    # Balanced: scores [0.75, 0.25] and [0.25, 0.75], f = [1, 1], P = [0.5, 0.5] -> alpha * 1.
    moe(torch.tensor([[[ln3, 0.0], [0.0, ln3]]]), routing=(stats := RoutingStats()))
    assert stats.aux_loss().item() == pytest.approx(0.1)
    moe.eval()
    moe(torch.tensor([[[ln3, 0.0], [0.0, ln3]]]), routing=(stats := RoutingStats()))
    assert stats.aux_loss() is None and len(stats.loads) == 1


def test_transformer_aux_loss_sums_layers_and_trains():
    cfg = ModelConfig(**{**MLA_CFG, "first_k_dense_replace": 0, "aux_loss_alpha": 0.01})
    torch.manual_seed(0)
    model = Transformer(cfg).train()
    x = torch.randint(0, 64, (2, 8))
    logits = model(x, routing=(stats := RoutingStats()))
    per_layer = stats.aux_losses
    assert len(per_layer) == 2
    torch.testing.assert_close(stats.aux_loss(), per_layer[0] + per_layer[1])
    assert stats.aux_loss().item() > 0
    loss = F.cross_entropy(logits[:, :-1].reshape(-1, 64), x[:, 1:].reshape(-1)) + stats.aux_loss()
    loss.backward()
    assert model.model.layers[0].mlp.gate.weight.grad.abs().sum() > 0
    model.eval()
    model(x, routing=(stats := RoutingStats()))
    assert stats.aux_loss() is None
    no_alpha = Transformer(ModelConfig(**{**MLA_CFG, "aux_loss_alpha": 0.0})).train()
    no_alpha(x, routing=(stats := RoutingStats()))
    assert stats.aux_loss() is None


def test_v3_routing_bias_update_by_hand():
    cfg = ModelConfig(**{**MLA_CFG, "model_type": "deepseek_v3", "n_routed_experts": 4, "num_experts_per_tok": 1,
                         "n_group": 1, "topk_group": 1, "first_k_dense_replace": 0, "num_hidden_layers": 1})
    model = Transformer(cfg).train()
    gate = model.model.layers[0].mlp.gate
    with torch.no_grad():
        gate.weight.zero_()
        gate.weight[0, :] = 1.0  # every token with positive features prefers expert 0
        model.model.layers[0].mlp(torch.ones(1, 6, 32), routing=(stats := RoutingStats()))
    assert stats.loads[0].tolist() == [6.0, 0.0, 0.0, 0.0]
    model.update_routing_bias(0.1, stats)  # mean load 1.5: overloaded expert 0 goes down, idle ones go up
    torch.testing.assert_close(gate.e_score_correction_bias, torch.tensor([-0.1, 0.1, 0.1, 0.1]))
    v2 = Transformer(ModelConfig(**MLA_CFG)).train()
    v2(torch.randint(0, 64, (1, 4)), routing=(stats := RoutingStats()))
    v2.update_routing_bias(0.1, stats)  # no-op: V2 has no bias
    with pytest.raises(ValueError, match="expert loads for 1 MoE layers"):
        v2.update_routing_bias(0.1, RoutingStats())
    assert not hasattr(v2.model.layers[1].mlp.gate, "e_score_correction_bias")


def test_config_roundtrip_and_hf_rope_parameters():
    cfg = ModelConfig(**{**MLA_CFG, "model_type": "deepseek_v3", "n_group": 2, "topk_group": 1,
                         "rope_scaling": {"type": "yarn", "factor": 4.0, "original_max_position_embeddings": 64}})
    again = ModelConfig.from_dict(cfg.to_dict())
    assert again == cfg
    assert cfg.to_dict()["architectures"] == ["DeepseekV3ForCausalLM"]
    hf_style = {**cfg.to_dict(), "rope_scaling": None, "rope_theta": None,
                "rope_parameters": {"rope_type": "yarn", "factor": 4.0, "rope_theta": 5e4}}
    hf_style.pop("rope_theta")
    parsed = ModelConfig.from_dict(hf_style)
    assert parsed.rope_theta == 5e4 and parsed.rope_scaling["type"] == "yarn"
    with pytest.raises(ValueError, match="num_experts_per_tok 9 must be in 1..6"):
        ModelConfig(**{**MLA_CFG, "num_experts_per_tok": 9})
    with pytest.raises(ValueError, match="mlp_bias=True is not supported"):
        ModelConfig.from_dict({**MLA_CFG, "model_type": "deepseek_v2", "mlp_bias": True})


def test_llama_gqa_padded_batch_matches_unpadded_rows():
    cfg = ModelConfig(model_type="llama", vocab_size=64, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2)
    torch.manual_seed(0)
    model = Transformer(cfg).eval()
    short, long = torch.randint(0, 64, (1, 4)), torch.randint(0, 64, (1, 7))
    batch = torch.cat([torch.cat([torch.zeros(1, 3, dtype=torch.long), short], 1), long])
    mask = torch.ones(2, 7, dtype=torch.long)
    mask[0, :3] = 0
    with torch.no_grad():
        out = model(batch, attention_mask=mask)
        torch.testing.assert_close(out[0, 3:], model(short)[0], atol=1e-5, rtol=0)
        torch.testing.assert_close(out[1], model(long)[0], atol=1e-5, rtol=0)


@pytest.mark.parametrize("seq_aux", [False, True])
def test_padding_is_left_out_of_balance_loss_and_loads(seq_aux):
    moe = _two_expert_moe("deepseek_v2", seq_aux, alpha=0.1).train()
    ln3 = math.log(3.0)
    # Row 0: a pad (routed to expert 0) then a real token to expert 0; row 1: two real tokens, one per expert.
    x = torch.tensor([[[ln3, 0.0], [ln3, 0.0]], [[ln3, 0.0], [0.0, ln3]]])
    moe(x, token_mask=torch.tensor([[False, True], [True, True]]), routing=(stats := RoutingStats()))
    assert stats.loads[0].tolist() == [2.0, 1.0]
    # Row 0 alone: f = [2, 0], P = [.75, .25] -> 1.5; row 1: 1.0. Batch: counts [2, 1] of 3, P = [7/12, 5/12].
    expected = (1.5 + 1.0) / 2 if seq_aux else (2 * 2 / 3) * (7 / 12) + (2 * 1 / 3) * (5 / 12)
    assert stats.aux_loss().item() == pytest.approx(0.1 * expected)


@pytest.mark.parametrize("model_type", ["deepseek_v2", "llama"])
def test_casting_inputs_once_under_autocast_keeps_logits_and_gradient_accuracy(model_type, monkeypatch):
    """MLA, GQA and MLP cast their input once for all their linears. Autocast would round x the same way for
    each linear, so the logits are bit-identical; the input's gradients are summed in bf16 before the one
    cast back (not in fp32 after one cast each), which must cost no measurable accuracy against fp32."""
    import core_model.model as model_module

    extra = dict(num_key_value_heads=2) if model_type == "llama" else dict(n_shared_experts=1, first_k_dense_replace=1)
    torch.manual_seed(0)
    model = Transformer(ModelConfig(model_type=model_type, **MLA_CFG, **extra)).train()
    ids = torch.randint(0, 64, (4, 16))

    def run(autocast: bool = True):
        model.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            logits = model(ids)
        F.cross_entropy(logits[:, :-1].float().flatten(0, 1), ids[:, 1:].flatten()).backward()
        return logits, {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    _, exact = run(autocast=False)
    once, once_grads = run()
    monkeypatch.setattr(model_module, "autocast_input", lambda x: x)
    each, each_grads = run()
    assert once.dtype == torch.bfloat16
    torch.testing.assert_close(once, each, atol=0, rtol=0)
    assert once_grads.keys() == each_grads.keys() == exact.keys()

    def error(grads):  # mean relative error against the fp32 gradients
        return sum(float((grads[n] - g).norm() / g.norm()) for n, g in exact.items()) / len(exact)

    assert error(each_grads) < 0.02  # bf16 rounding, not a broken backward
    assert error(once_grads) < 1.1 * error(each_grads) + 1e-4
