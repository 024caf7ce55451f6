"""Checkpoint edge cases: bad input names the file/tensor, fused experts, MTP weights, tied embeddings."""
from __future__ import annotations

import json
import logging

import pytest
import torch
from safetensors.torch import load_file, save_file

from core_model import CheckpointError, ModelConfig, Transformer, load_pretrained, save_pretrained

torch.set_num_threads(1)

V3 = dict(model_type="deepseek_v3", vocab_size=96, hidden_size=32, intermediate_size=64, moe_intermediate_size=16,
          num_hidden_layers=2, num_attention_heads=2, q_lora_rank=16, kv_lora_rank=16, qk_nope_head_dim=8,
          qk_rope_head_dim=4, v_head_dim=8, n_routed_experts=4, num_experts_per_tok=2, n_group=2, topk_group=1,
          first_k_dense_replace=1, norm_topk_prob=True)


def _model(**overrides) -> Transformer:
    torch.manual_seed(0)
    return Transformer(ModelConfig.from_dict({**V3, **overrides})).eval()


@pytest.fixture()
def saved(tmp_path):
    model = _model()
    save_pretrained(model, tmp_path, max_shard_size="30KB")
    return model, tmp_path


def _x():
    return torch.randint(0, 96, (2, 7), generator=torch.Generator().manual_seed(0))


def test_missing_shard_is_named(saved):
    _, path = saved
    victim = sorted(path.glob("model-*.safetensors"))[1]
    victim.unlink()
    with pytest.raises(CheckpointError, match=victim.name):
        load_pretrained(path)


def test_tensor_missing_from_all_shards_is_named(tmp_path):
    save_pretrained(_model(), tmp_path)
    tensors = load_file(tmp_path / "model.safetensors")
    del tensors["model.layers.1.mlp.experts.3.up_proj.weight"]
    save_file(tensors, tmp_path / "model.safetensors")
    with pytest.raises(CheckpointError, match=r"model\.layers\.1\.mlp\.experts\.3\.up_proj\.weight"):
        load_pretrained(tmp_path)


def test_wrong_shape_names_tensor_and_file(tmp_path):
    save_pretrained(_model(), tmp_path)
    tensors = load_file(tmp_path / "model.safetensors")
    tensors["model.layers.0.self_attn.kv_b_proj.weight"] = torch.zeros(3, 3)
    save_file(tensors, tmp_path / "model.safetensors")
    with pytest.raises(CheckpointError, match=r"model\.safetensors.*kv_b_proj\.weight.*\(3, 3\)"):
        load_pretrained(tmp_path)


def test_unexpected_tensor_is_an_error(tmp_path):
    save_pretrained(_model(), tmp_path)
    tensors = load_file(tmp_path / "model.safetensors")
    tensors["model.layers.0.self_attn.mystery.weight"] = torch.zeros(2)
    save_file(tensors, tmp_path / "model.safetensors")
    with pytest.raises(CheckpointError, match="mystery"):
        load_pretrained(tmp_path)


@pytest.mark.parametrize("change, message", [
    ({"architectures": ["MixtralForCausalLM"]}, "unknown architecture 'MixtralForCausalLM'"),
    ({"topk_method": "random"}, "topk_method 'random'"),
    ({"n_group": 3}, "n_group 3 must divide n_routed_experts 4"),
    ({"hidden_act": "gelu"}, "hidden_act 'gelu'"),
    ({"rope_scaling": {"type": "dynamic", "factor": 2.0}}, "rope_scaling type 'dynamic'"),
    ({"model_type": "gpt2"}, "model_type 'gpt2'"),
    ({"model_type": "deepseek_v2"}, "architectures 'DeepseekV3ForCausalLM' does not match model_type 'deepseek_v2'"),
    ({"n_routed_experts": 4, "n_group": 4}, "each of the n_group groups needs >= 2 experts"),
])
def test_bad_config_values_are_clear_errors(saved, change, message):
    _, path = saved
    cfg = json.loads((path / "config.json").read_text())
    (path / "config.json").write_text(json.dumps({**cfg, **change}))
    with pytest.raises(CheckpointError, match=r"config\.json") as info:
        load_pretrained(path)
    assert message in str(info.value)


def test_no_config_and_bin_only_directories(tmp_path):
    with pytest.raises(CheckpointError, match="no config.json"):
        load_pretrained(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps(V3))
    (tmp_path / "pytorch_model.bin").write_bytes(b"")
    with pytest.raises(CheckpointError, match="convert them to safetensors"):
        load_pretrained(tmp_path)


def test_sharded_roundtrip_is_exact(saved):
    model, path = saved
    assert len(list(path.glob("model-*.safetensors"))) > 1
    with torch.no_grad():
        torch.testing.assert_close(load_pretrained(path, pack_experts=False)(_x()), model(_x()), atol=0, rtol=0)


def test_fused_expert_layout_loads(tmp_path):
    model = _model()
    save_pretrained(model, tmp_path)
    tensors = load_file(tmp_path / "model.safetensors")
    p = "model.layers.1.mlp.experts"
    gate_up = torch.stack([torch.cat([tensors.pop(f"{p}.{j}.gate_proj.weight"), tensors.pop(f"{p}.{j}.up_proj.weight")])
                           for j in range(4)])
    down = torch.stack([tensors.pop(f"{p}.{j}.down_proj.weight") for j in range(4)])
    tensors.update({f"{p}.gate_up_proj": gate_up, f"{p}.down_proj": down})  # [E, 2I, d], [E, d, I]
    save_file(tensors, tmp_path / "model.safetensors")
    with torch.no_grad():
        torch.testing.assert_close(load_pretrained(tmp_path, pack_experts=False)(_x()), model(_x()), atol=0, rtol=0)


def test_mtp_layer_saved_under_next_layer_index_and_loaded(tmp_path):
    model = _model(num_nextn_predict_layers=1)
    save_pretrained(model, tmp_path)
    names = load_file(tmp_path / "model.safetensors").keys()
    assert {"model.layers.2.eh_proj.weight", "model.layers.2.enorm.weight", "model.layers.2.shared_head.head.weight",
            "model.layers.2.embed_tokens.weight", "model.layers.2.self_attn.kv_b_proj.weight"} <= set(names)
    loaded = load_pretrained(tmp_path, pack_experts=False)
    assert len(loaded.mtp) == 1
    x = _x()
    with torch.no_grad():
        logits, hidden = model(x[:, :-1], return_hidden=True)
        ref, _ = model.mtp_logits(hidden, x[:, 1:])
        got, _ = loaded.mtp_logits(loaded(x[:, :-1], return_hidden=True)[1], x[:, 1:])
    assert ref.shape == (2, 6, 96)
    torch.testing.assert_close(got, ref, atol=0, rtol=0)


def test_mtp_skipped_with_notice_when_absent_or_unwanted(tmp_path, caplog):
    save_pretrained(_model(num_nextn_predict_layers=1), tmp_path)
    with caplog.at_level(logging.WARNING, logger="proofcode.core_model"):
        skipped = load_pretrained(tmp_path, load_mtp=False)
    assert len(skipped.mtp) == 0 and "skipping the multi-token-prediction" in caplog.text
    tensors = {k: v for k, v in load_file(tmp_path / "model.safetensors").items() if "layers.2." not in k}
    save_file(tensors, tmp_path / "model.safetensors")
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="proofcode.core_model"):
        absent = load_pretrained(tmp_path)
    assert len(absent.mtp) == 0 and "absent or incomplete" in caplog.text


def test_tied_embeddings_saved_once_and_retied(tmp_path):
    model = _model(tie_word_embeddings=True)
    save_pretrained(model, tmp_path)
    assert "lm_head.weight" not in load_file(tmp_path / "model.safetensors")
    loaded = load_pretrained(tmp_path)
    assert loaded.lm_head.weight is loaded.model.embed_tokens.weight
    tensors = load_file(tmp_path / "model.safetensors")  # some tools also write the tied copy: ignored
    save_file({**tensors, "lm_head.weight": tensors["model.embed_tokens.weight"].clone()}, tmp_path / "model.safetensors")
    again = load_pretrained(tmp_path)
    assert again.lm_head.weight is again.model.embed_tokens.weight


def test_bad_shard_size_is_clear(tmp_path):
    with pytest.raises(CheckpointError, match="max_shard_size 'lots'"):
        save_pretrained(_model(), tmp_path, max_shard_size="lots")


def test_fp8_block_quantized_weights_are_dequantized(tmp_path):
    model = _model()
    save_pretrained(model, tmp_path)
    tensors = load_file(tmp_path / "model.safetensors")
    key = "model.layers.0.self_attn.kv_b_proj.weight"  # [32, 16] -> 2 x 1 tiles of 16 x 16
    w = tensors[key]
    scale = torch.tensor([[0.5], [0.25]])
    q = (w / scale.repeat_interleave(16, 0)).to(torch.float8_e4m3fn)
    tensors[key], tensors[key + "_scale_inv"] = q, scale
    save_file(tensors, tmp_path / "model.safetensors")
    cfg = json.loads((tmp_path / "config.json").read_text())
    cfg["quantization_config"] = {"quant_method": "fp8", "weight_block_size": [16, 16]}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    loaded = load_pretrained(tmp_path)
    expected = q.float() * scale.repeat_interleave(16, 0)
    torch.testing.assert_close(loaded.model.layers[0].self_attn.kv_b_proj.weight, expected, atol=0, rtol=0)
    torch.testing.assert_close(expected, w, atol=0.02, rtol=0.07)  # fp8 rounding only
    loaded.save_pretrained(tmp_path / "again")
    assert "quantization_config" not in json.loads((tmp_path / "again" / "config.json").read_text())
