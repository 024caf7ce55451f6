"""A DeepSeek-V2/V3 style transformer: MLA with a latent-only KV cache, DeepSeekMoE, HF checkpoints.

Public API (stable names other packages and users rely on):
    model = load_pretrained(path, dtype=torch.float32)
    logits = model(input_ids)                      # [batch, seq, vocab]
    model.save_pretrained(path)
    completions = generate(model, tokenizer, prompts, GenerationConfig(...))
"""
from __future__ import annotations

from pathlib import Path

# The tiny checkpoint shipped with the package (config.json, model.safetensors, tokenizer.json).
EMBEDDED_TINY_PATH = Path(__file__).resolve().parent / "assets" / "tiny"

_EXPORTS = {
    "ModelConfig": ".model",
    "Transformer": ".model",
    "RoutingStats": ".model",
    "load_pretrained": ".checkpoint",
    "save_pretrained": ".checkpoint",
    "CheckpointError": ".checkpoint",
    "generate": ".generation",
    "generate_ids": ".generation",
    "GenerationConfig": ".generation",
    "Completion": ".generation",
    "Tokenizer": ".tokenizer",
    "load_tokenizer": ".tokenizer",
    "train_bpe": ".tokenizer",
    "TrainConfig": ".training",
    "train": ".training",
    "model_preset": ".presets",
    "cpu_has_native_bf16": ".precision",
    "GRPOConfig": ".grpo",
    "grpo_loss": ".grpo",
    "group_advantages": ".grpo",
}


from proofcode_common import lazy_exports  # noqa: E402

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())


__all__ = sorted(_EXPORTS)
