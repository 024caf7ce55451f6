"""Parity with `transformers` DeepseekV2/V3/Llama: checkpoints load both ways, logits and greedy decoding agree."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
import helpers_hf  # noqa: E402

from core_model import GenerationConfig, Transformer, generate_ids, load_pretrained  # noqa: E402

transformers = pytest.importorskip("transformers")
torch.set_num_threads(1)

KINDS = list(helpers_hf.TINY_CONFIGS)


@pytest.fixture(scope="module")
def hf_checkpoints(tmp_path_factory):
    """kind -> (transformers model, checkpoint dir written by transformers' save_pretrained)."""
    out = {}
    for kind in KINDS:
        path = tmp_path_factory.mktemp(f"hf_{kind}")
        out[kind] = (helpers_hf.save_hf_checkpoint(kind, path), path)
    return out


def _ids(seed: int, shape=(2, 11)) -> torch.Tensor:
    return torch.randint(2, 160, shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("kind", KINDS)
def test_transformers_checkpoint_loads_with_same_logits(kind, hf_checkpoints):
    hf, path = hf_checkpoints[kind]
    ours = load_pretrained(path)
    assert isinstance(ours, Transformer) and not ours.training
    x = _ids(1)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), hf(x).logits, atol=1e-4, rtol=0)


@pytest.mark.parametrize("kind", KINDS)
def test_greedy_generation_matches_transformers_for_32_tokens(kind, hf_checkpoints):
    hf, path = hf_checkpoints[kind]
    ours = load_pretrained(path)
    prompt = _ids(2, (1, 9))
    with torch.no_grad():
        ref = hf.generate(prompt, max_new_tokens=32, do_sample=False, eos_token_id=None, pad_token_id=0)
    got = generate_ids(ours, prompt.tolist(), GenerationConfig(max_new_tokens=32, temperature=0))[0]
    assert got.token_ids == ref[0, 9:].tolist()
    assert got.finish_reason == "length" and len(got.logprobs) == 32


@pytest.mark.parametrize("kind", ["v2_qlora_group", "v3_yarn", "llama"])
def test_saved_checkpoint_loads_in_transformers_with_same_logits(kind, hf_checkpoints, tmp_path):
    _, path = hf_checkpoints[kind]
    ours = load_pretrained(path)
    ours.save_pretrained(tmp_path / "out")
    back = transformers.AutoModelForCausalLM.from_pretrained(str(tmp_path / "out")).eval()
    assert type(back).__name__ == {"v2_qlora_group": "DeepseekV2ForCausalLM", "v3_yarn": "DeepseekV3ForCausalLM",
                                   "llama": "LlamaForCausalLM"}[kind]
    x = _ids(3)
    with torch.no_grad():
        torch.testing.assert_close(back(x).logits, ours(x), atol=1e-4, rtol=0)


def test_sharded_save_writes_index_and_loads_in_both(hf_checkpoints, tmp_path):
    _, path = hf_checkpoints["v3"]
    ours = load_pretrained(path)
    ours.save_pretrained(tmp_path, max_shard_size="40KB")
    shards = sorted(tmp_path.glob("model-*-of-*.safetensors"))
    assert len(shards) > 2 and (tmp_path / "model.safetensors.index.json").exists()
    again = load_pretrained(tmp_path)
    back = transformers.AutoModelForCausalLM.from_pretrained(str(tmp_path)).eval()
    x = _ids(4)
    with torch.no_grad():
        torch.testing.assert_close(again(x), ours(x), atol=0, rtol=0)
        torch.testing.assert_close(back(x).logits, ours(x), atol=1e-4, rtol=0)


def test_bf16_load_keeps_router_in_fp32(hf_checkpoints):
    hf, path = hf_checkpoints["v3"]
    ours = load_pretrained(path, dtype=torch.bfloat16)
    gate = ours.model.layers[1].mlp.gate
    assert ours.lm_head.weight.dtype == torch.bfloat16
    assert gate.weight.dtype == torch.float32 and gate.e_score_correction_bias.dtype == torch.float32
    x = _ids(5)
    with torch.no_grad():
        ref = hf(x).logits
        got = ours(x).float()
    # bf16 rounding only: the argmax agrees on nearly every position
    assert (got.argmax(-1) == ref.argmax(-1)).float().mean() > 0.8


@pytest.mark.parametrize("kind, overrides", [
    ("llama", dict(rope_scaling={"type": "linear", "factor": 2.0})),
    ("llama", dict(rope_scaling={"type": "yarn", "factor": 4.0, "original_max_position_embeddings": 128},
                   tie_word_embeddings=True, head_dim=16)),
    ("v2", dict(attention_bias=True, tie_word_embeddings=True)),
])
def test_more_config_variants_match_transformers(kind, overrides, tmp_path):
    hf = helpers_hf.save_hf_checkpoint(kind, tmp_path, **overrides)
    ours = load_pretrained(tmp_path)
    x = _ids(6, (2, 40))
    with torch.no_grad():
        torch.testing.assert_close(ours(x), hf(x).logits, atol=1e-4, rtol=0)


def _hf_grads_by_our_names(hf, n_experts: int) -> dict[str, torch.Tensor]:
    """transformers' parameter gradients under core_model's names (its fused expert stacks split per expert)."""
    out = {}
    for name, p in hf.named_parameters():
        if p.grad is None:
            continue
        prefix = name.rsplit(".", 1)[0] + "."
        if name.endswith("mlp.experts.gate_up_proj"):  # [E, 2I, H]
            gate, up = p.grad.chunk(2, 1)
            for e in range(n_experts):
                out[f"{prefix}{e}.gate_proj.weight"], out[f"{prefix}{e}.up_proj.weight"] = gate[e], up[e]
        elif name.endswith("mlp.experts.down_proj"):  # [E, H, I]
            for e in range(n_experts):
                out[f"{prefix}{e}.down_proj.weight"] = p.grad[e]
        else:
            out[name] = p.grad
    return out


@pytest.mark.parametrize("kind", ["v2", "v3"])
def test_training_gradients_match_transformers(kind, hf_checkpoints):
    """One cross-entropy backward through both models: every parameter (routed experts and router included)
    gets the same gradient."""
    hf, path = hf_checkpoints[kind]
    ours = load_pretrained(path).train()
    hf.train()
    x = _ids(7, (2, 24))
    try:
        for model in (ours, hf):
            logits = model(x) if model is ours else model(x).logits
            torch.nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1), x[:, 1:].flatten()).backward()
        want = _hf_grads_by_our_names(hf, hf.config.n_routed_experts)
        params = dict(ours.named_parameters())
        assert set(params) == set(want) and any(".mlp.experts.7." in n for n in params)
        for name, p in params.items():  # an expert no token picked has no gradient here, zeros there
            g = torch.zeros_like(p) if p.grad is None else p.grad
            torch.testing.assert_close(g, want[name], atol=1e-5, rtol=1e-4, msg=lambda m: f"{name}: {m}")
    finally:
        hf.zero_grad(set_to_none=True)
        hf.eval()
