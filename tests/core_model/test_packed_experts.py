"""Packed experts: stacked weights run by torch._grouped_mm for inference; training and saving unchanged."""
from __future__ import annotations

import copy

import pytest
import torch

from core_model import ModelConfig, Transformer, load_pretrained
from core_model.model import MoE

torch.set_num_threads(1)

# hidden/moe dims are multiples of 16 bytes in fp32: grouped_mm needs aligned strides
CFG = dict(model_type="deepseek_v3", vocab_size=96, hidden_size=32, intermediate_size=64, moe_intermediate_size=16,
           num_hidden_layers=3, num_attention_heads=2, q_lora_rank=16, kv_lora_rank=16, qk_nope_head_dim=8,
           qk_rope_head_dim=4, v_head_dim=8, n_routed_experts=8, num_experts_per_tok=3, n_group=2, topk_group=1,
           first_k_dense_replace=1, norm_topk_prob=True)

pytestmark = pytest.mark.skipif(not hasattr(torch, "_grouped_mm"), reason="this torch has no torch._grouped_mm")


def _pair():
    torch.manual_seed(0)
    plain = Transformer(ModelConfig.from_dict(CFG)).eval()
    return plain, copy.deepcopy(plain).pack_experts()


def _grouped_calls(model, ids) -> int:
    """Forward under no_grad, counting MoE layers that took the grouped path."""
    calls = []
    hooks = [m.register_forward_hook(lambda mod, i, o: calls.append(mod._grouped_ready(i[0].reshape(-1, i[0].shape[-1]))))
             for m in model.modules() if isinstance(m, MoE)]
    with torch.no_grad():
        model(ids)
    for h in hooks:
        h.remove()
    return sum(calls)


def test_packed_inference_matches_the_expert_loop():
    plain, packed = _pair()
    ids = torch.randint(0, 96, (3, 11), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(packed(ids), plain(ids), atol=1e-5, rtol=1e-5)
    assert _grouped_calls(packed, ids) == 2 and _grouped_calls(plain, ids) == 0
    # packing moved the weights, it did not copy them: each expert's parameter is a view of the stack
    moe = next(m for m in packed.modules() if isinstance(m, MoE))
    assert moe.experts[3].up_proj.weight.data_ptr() == moe.w13[3, CFG["moe_intermediate_size"]:].data_ptr()


def test_training_a_packed_model_updates_the_stack():
    plain, packed = _pair()
    ids = torch.randint(0, 96, (2, 9), generator=torch.Generator().manual_seed(2))
    for model in (plain, packed):
        model.train()
        model(ids).logsumexp(-1).mean().backward()
    moe_p, moe_q = (next(m for m in x.modules() if isinstance(m, MoE)) for x in (plain, packed))
    torch.testing.assert_close(moe_q.experts[5].gate_proj.weight.grad, moe_p.experts[5].gate_proj.weight.grad)
    with torch.no_grad():
        for p in packed.parameters():
            if p.grad is not None:
                p -= 0.1 * p.grad
    # the in-place update landed in the stacked tensor that inference reads
    torch.testing.assert_close(moe_q.w13[5, : CFG["moe_intermediate_size"]], moe_q.experts[5].gate_proj.weight)


def test_moved_model_stays_packed_and_saves(tmp_path):
    plain, packed = _pair()
    ids = torch.randint(0, 96, (2, 5), generator=torch.Generator().manual_seed(3))
    packed.to(torch.float64)  # each parameter converted apart from the stack: the layer packs again
    plain.to(torch.float64)
    moe = next(m for m in packed.modules() if isinstance(m, MoE))
    assert moe.w13.dtype == torch.float64 and _shares(moe.experts[2].down_proj.weight, moe.w2)
    with torch.no_grad():
        torch.testing.assert_close(packed(ids), plain(ids))
    moe.load_state_dict({k: v.clone() for k, v in moe.state_dict().items()}, assign=True)  # new tensors
    assert _shares(moe.experts[2].down_proj.weight, moe.w2)
    twin = copy.deepcopy(moe)  # deepcopy (and pickle) copy parameters one by one
    assert _shares(twin.experts[2].down_proj.weight, twin.w2) and not _shares(twin.experts[2].down_proj.weight, moe.w2)
    plain2, packed2 = _pair()
    packed2.save_pretrained(tmp_path)  # views of one storage: written as separate tensors
    loaded = load_pretrained(tmp_path)
    assert _grouped_calls(loaded, ids) == 2
    with torch.no_grad():
        torch.testing.assert_close(loaded(ids), plain2(ids), atol=1e-5, rtol=1e-5)


def _shares(param, stack) -> bool:
    return param.untyped_storage().data_ptr() == stack.untyped_storage().data_ptr()


def _grads(model, ids):
    model.train()
    model.zero_grad()
    model(ids).logsumexp(-1).mean().backward()
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def test_grouped_training_path_gives_the_loop_gradients():
    """train_grouped: two grouped matmuls per layer (padded, aligned groups) with gradients reaching every
    expert's parameters, including experts that got no token (zero gradient, as in the loop)."""
    plain, packed = _pair()
    ids = torch.randint(0, 96, (1, 3), generator=torch.Generator().manual_seed(4))
    moes = [m for m in packed.modules() if isinstance(m, MoE)]
    for m in moes:
        m.train_grouped = True
    used = []
    hooks = [m.register_forward_hook(lambda mod, i, o: used.append(mod._grouped_ready(i[0]))) for m in moes]
    want, got = _grads(plain, ids), _grads(packed, ids)
    assert used == [True, True]
    for h in hooks:
        h.remove()
    assert set(want) <= set(got) and any(".experts.7." in n for n in got)
    for name in got:  # the loop leaves no gradient on an expert without tokens; the stack gives it zeros
        torch.testing.assert_close(got[name], want.get(name, torch.zeros_like(got[name])), atol=1e-5, rtol=1e-5,
                                   msg=name)
    assert set(got) - set(want), "the check needs an expert that got no token"
