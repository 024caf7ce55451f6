"""Tiny random `transformers` DeepseekV2/V3 and Llama checkpoints for parity tests and benchmarks.

Import from a test or benchmark with:
    sys.path.insert(0, str(REPO / "tests" / "core_model")); import helpers_hf
then `model = helpers_hf.save_hf_checkpoint("v3_yarn", tmp_path)` writes config.json + model.safetensors.
"""
from __future__ import annotations

from pathlib import Path

import torch

_MLA = dict(vocab_size=160, hidden_size=48, intermediate_size=96, moe_intermediate_size=24, num_hidden_layers=3,
            num_attention_heads=4, kv_lora_rank=24, qk_nope_head_dim=8, qk_rope_head_dim=8, v_head_dim=12,
            n_routed_experts=8, n_shared_experts=1, num_experts_per_tok=2, first_k_dense_replace=1,
            max_position_embeddings=512, bos_token_id=0, eos_token_id=1, tie_word_embeddings=False)
_YARN = {"type": "yarn", "factor": 4.0, "original_max_position_embeddings": 128, "beta_fast": 32, "beta_slow": 1,
         "mscale": 0.707, "mscale_all_dim": 0.707}

# name -> (architecture, config kwargs)
TINY_CONFIGS: dict[str, tuple[str, dict]] = {
    "v2": ("v2", dict(_MLA, q_lora_rank=None, topk_method="greedy", routed_scaling_factor=1.0)),
    "v2_qlora_group": ("v2", dict(_MLA, q_lora_rank=16, topk_method="group_limited_greedy", n_group=4, topk_group=2,
                                  routed_scaling_factor=2.0, first_k_dense_replace=2)),
    "v2_yarn": ("v2", dict(_MLA, q_lora_rank=None, rope_scaling=_YARN, first_k_dense_replace=0)),
    "v3": ("v3", dict(_MLA, q_lora_rank=16, n_group=4, topk_group=2, routed_scaling_factor=2.5,
                      norm_topk_prob=True, num_nextn_predict_layers=0)),
    "v3_yarn": ("v3", dict(_MLA, q_lora_rank=None, n_group=2, topk_group=1, routed_scaling_factor=1.5,
                           norm_topk_prob=True, rope_scaling=_YARN, num_nextn_predict_layers=1)),
    "llama": ("llama", dict(vocab_size=160, hidden_size=48, intermediate_size=96, num_hidden_layers=2,
                            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                            bos_token_id=0, eos_token_id=1, tie_word_embeddings=False)),
}


def build_hf_model(kind: str, seed: int = 0, std: float = 0.15, **overrides):
    """A `transformers` causal LM of TINY_CONFIGS[kind] with random weights large enough for distinct logits."""
    import transformers

    arch, kwargs = TINY_CONFIGS[kind]
    cfg_cls, model_cls = {
        "v2": (transformers.DeepseekV2Config, transformers.DeepseekV2ForCausalLM),
        "v3": (transformers.DeepseekV3Config, transformers.DeepseekV3ForCausalLM),
        "llama": (transformers.LlamaConfig, transformers.LlamaForCausalLM),
    }[arch]
    torch.manual_seed(seed)
    model = model_cls(cfg_cls(**{**kwargs, **overrides})).eval()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.copy_(torch.rand(p.shape, generator=gen) + 0.5)
            else:
                p.copy_(torch.randn(p.shape, generator=gen) * std)
        for name, b in model.named_buffers():
            if "e_score_correction_bias" in name:
                b.copy_(torch.randn(b.shape, generator=gen) * 0.05)
    return model


def save_hf_checkpoint(kind: str, path: str | Path, seed: int = 0, **overrides):
    """Write a tiny random checkpoint with transformers' own `save_pretrained`; returns the HF model."""
    model = build_hf_model(kind, seed=seed, **overrides)
    model.save_pretrained(str(path))
    return model
