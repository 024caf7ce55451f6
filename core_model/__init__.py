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


def __getattr__(name: str):
    # Lazy: `import PKG` stays cheap and the parts load only what they use.
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_EXPORTS))


__all__ = sorted(_EXPORTS)
