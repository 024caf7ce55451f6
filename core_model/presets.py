"""Named model shapes and training jobs: `proofcode train --preset tiny`, and the benchmark configs."""
from __future__ import annotations

import copy

# config.json fields (Hugging Face DeepseekV2 names) of the model shapes this project uses by name.
MODEL_PRESETS: dict[str, dict] = {
    # Trains from scratch on 2 CPU cores in a few minutes; still MLA + a real routed MoE.
    "tiny": {
        "model_type": "deepseek_v2",
        "hidden_size": 128,
        "num_hidden_layers": 4,
        "num_attention_heads": 4,
        "num_key_value_heads": 4,
        "intermediate_size": 384,
        "moe_intermediate_size": 128,
        "n_routed_experts": 8,
        "n_shared_experts": 1,
        "num_experts_per_tok": 2,
        "first_k_dense_replace": 1,
        "moe_layer_freq": 1,
        "kv_lora_rank": 32,
        "q_lora_rank": None,
        "qk_nope_head_dim": 32,
        "qk_rope_head_dim": 16,
        "v_head_dim": 32,
        "topk_method": "greedy",
        "norm_topk_prob": False,
        "routed_scaling_factor": 1.0,
        "aux_loss_alpha": 0.01,
        "seq_aux": True,
        "rope_theta": 10000.0,
        "rms_norm_eps": 1e-6,
        "max_position_embeddings": 2048,
        "initializer_range": 0.02,
        "tie_word_embeddings": False,
    },
    # Benchmarks on CPU: V2-Lite's proportions (head dims, latent rank, expert mix) at a size 2 cores can time.
    "bench-small": {
        "model_type": "deepseek_v2",
        "vocab_size": 8192,
        "hidden_size": 512,
        "num_hidden_layers": 4,
        "num_attention_heads": 8,
        "num_key_value_heads": 8,
        "intermediate_size": 1408,
        "moe_intermediate_size": 256,
        "n_routed_experts": 16,
        "n_shared_experts": 2,
        "num_experts_per_tok": 4,
        "first_k_dense_replace": 1,
        "moe_layer_freq": 1,
        "kv_lora_rank": 128,
        "q_lora_rank": None,
        "qk_nope_head_dim": 64,
        "qk_rope_head_dim": 32,
        "v_head_dim": 64,
        "topk_method": "greedy",
        "norm_topk_prob": False,
        "routed_scaling_factor": 1.0,
        "rope_theta": 10000.0,
        "rms_norm_eps": 1e-6,
        "max_position_embeddings": 4096,
        "initializer_range": 0.02,
        "tie_word_embeddings": False,
    },
    # DeepSeek-V2-Lite's shape (15.7B total, 2.4B active parameters), for the GPU benchmark.
    "v2-lite": {
        "model_type": "deepseek_v2",
        "vocab_size": 102400,
        "hidden_size": 2048,
        "num_hidden_layers": 27,
        "num_attention_heads": 16,
        "num_key_value_heads": 16,
        "intermediate_size": 10944,
        "moe_intermediate_size": 1408,
        "n_routed_experts": 64,
        "n_shared_experts": 2,
        "num_experts_per_tok": 6,
        "first_k_dense_replace": 1,
        "moe_layer_freq": 1,
        "kv_lora_rank": 512,
        "q_lora_rank": None,
        "qk_nope_head_dim": 128,
        "qk_rope_head_dim": 64,
        "v_head_dim": 128,
        "topk_method": "greedy",
        "norm_topk_prob": False,
        "routed_scaling_factor": 1.0,
        "rope_theta": 10000.0,
        "rms_norm_eps": 1e-6,
        "max_position_embeddings": 8192,
        "initializer_range": 0.02,
        "tie_word_embeddings": False,
    },
}

# TrainConfig fields of named training jobs; the CLI's --config file and flags override them.
TRAIN_PRESETS: dict[str, dict] = {
    # From scratch on the Python standard library's own sources (always on disk), BPE trained first.
    "tiny": {
        "output_dir": "runs/tiny",
        "data": "stdlib",
        "max_data_bytes": 3_000_000,
        "model": MODEL_PRESETS["tiny"],
        "tokenizer_vocab_size": 2048,
        "seq_len": 128,
        "batch_size": 16,
        "max_steps": 300,
        "lr": 3e-3,
        "warmup_steps": 20,
        "min_lr_ratio": 0.1,
        "weight_decay": 0.1,
        "grad_clip": 1.0,
        "log_every": 10,
        "num_threads": 2,
    },
}


def model_preset(name: str) -> dict:
    """A copy of the config.json fields of model preset `name`."""
    if name not in MODEL_PRESETS:
        raise ValueError(f"unknown model preset {name!r}; choose one of {sorted(MODEL_PRESETS)}")
    return copy.deepcopy(MODEL_PRESETS[name])


def train_preset(name: str) -> dict:
    """A copy of the TrainConfig fields of training preset `name`."""
    if name not in TRAIN_PRESETS:
        raise ValueError(f"unknown training preset {name!r}; choose one of {sorted(TRAIN_PRESETS)}")
    return copy.deepcopy(TRAIN_PRESETS[name])
