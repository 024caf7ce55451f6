"""Generation: batched prompts, sampling controls, logprobs, stop strings, eos, independent rows."""
from __future__ import annotations

import math

import pydantic
import pytest
import torch

from core_model import Completion, GenerationConfig, ModelConfig, Transformer, generate, generate_ids

torch.set_num_threads(1)
ALPHABET = "abcdefghijklmnopqrstuvwxyz .,;:!?0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"[:62]


class CharTokenizer:
    """id 0 = BOS, 1 = EOS, 2.. = one character each."""

    bos_id, eos_id = 0, 1

    def encode(self, text: str) -> list[int]:
        return [ALPHABET.index(c) + 2 for c in text]

    def decode(self, ids: list[int]) -> str:
        return "".join(ALPHABET[i - 2] for i in ids if i >= 2)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = Transformer(ModelConfig(vocab_size=64, hidden_size=32, intermediate_size=48, moe_intermediate_size=16,
                                num_hidden_layers=2, num_attention_heads=4, kv_lora_rank=16, qk_nope_head_dim=8,
                                qk_rope_head_dim=4, v_head_dim=8, n_routed_experts=4, num_experts_per_tok=2))
    with torch.no_grad():  # sharper than the 0.02 init so samples and greedy paths are distinct
        for p in m.parameters():
            p.mul_(8.0) if p.dim() > 1 else None
    return m.eval()


PROMPTS = [[0, 5, 9, 13], [0, 7, 3, 22, 40, 11, 2, 30], [0, 50]]


def test_batched_greedy_equals_one_prompt_at_a_time(model):
    cfg = GenerationConfig(max_new_tokens=12, temperature=0)
    batch = generate_ids(model, PROMPTS, cfg)
    for p, got in zip(PROMPTS, batch):
        alone = generate_ids(model, [p], cfg)[0]
        assert got.token_ids == alone.token_ids and got.prompt_token_ids == p
        assert got.logprobs == pytest.approx(alone.logprobs, abs=1e-4)
        assert got.finish_reason == "length" and got.text == ""


def test_logprobs_are_temperature_scaled_full_distribution(model):
    cfg = GenerationConfig(max_new_tokens=10, temperature=0.7, top_k=20, top_p=0.9, seed=3)
    for p, c in zip(PROMPTS, generate_ids(model, PROMPTS, cfg)):
        seq = torch.tensor([p + c.token_ids])
        with torch.no_grad():
            ref = (model(seq)[0, len(p) - 1 : -1] / 0.7).log_softmax(-1)
        expected = ref.gather(1, torch.tensor(c.token_ids)[:, None])[:, 0]
        assert c.logprobs == pytest.approx(expected.tolist(), abs=1e-4)


def test_seed_reproducible_and_sampling_controls(model):
    sample = GenerationConfig(max_new_tokens=16, temperature=1.0, seed=7)
    first = [c.token_ids for c in generate_ids(model, PROMPTS, sample)]
    assert first == [c.token_ids for c in generate_ids(model, PROMPTS, sample)]
    other = [c.token_ids for c in generate_ids(model, PROMPTS, sample.model_copy(update={"seed": 8}))]
    assert other != first
    greedy = [c.token_ids for c in generate_ids(model, PROMPTS, GenerationConfig(max_new_tokens=16, temperature=0))]
    assert greedy != first
    for narrow in (dict(top_k=1), dict(top_p=1e-6)):
        cfg = GenerationConfig(max_new_tokens=16, temperature=1.5, seed=1, **narrow)
        assert [c.token_ids for c in generate_ids(model, PROMPTS, cfg)] == greedy


def test_stop_string_truncates_text_and_finishes_row(model):
    tok = CharTokenizer()
    full = generate(model, tok, ["hello"], GenerationConfig(max_new_tokens=16, temperature=0))[0]
    assert full.prompt_token_ids[0] == tok.bos_id and len(full.text) == 16
    stop = full.text[5:7]
    cut = full.text.find(stop)
    got = generate(model, tok, ["hello", "hello"], GenerationConfig(max_new_tokens=16, temperature=0,
                                                                  stop=[stop, "never-seen"]))
    for c in got:
        assert c.finish_reason == "stop" and c.text == full.text[:cut]
        assert c.token_ids == full.token_ids[: cut + len(stop)]  # up to the token completing the stop string


def test_eos_finishes_only_its_row(model):
    cfg = GenerationConfig(max_new_tokens=10, temperature=0)
    plain = generate_ids(model, PROMPTS, cfg)
    # an eos id that row 0 produces after a few tokens and row 1 never produces
    eos = next(t for k, t in enumerate(plain[0].token_ids)
               if k >= 2 and t not in plain[1].token_ids and t not in plain[0].token_ids[:k])
    got = generate_ids(model, PROMPTS[:2], cfg, eos_id=eos)
    first_hit = plain[0].token_ids.index(eos)
    assert got[0].finish_reason == "eos" and got[0].token_ids == plain[0].token_ids[: first_hit + 1]
    assert got[1].finish_reason == "length" and got[1].token_ids == plain[1].token_ids


def test_generate_text_excludes_eos_and_logprob_by_hand():
    class EosIsZero(CharTokenizer):
        bos_id, eos_id = None, 0

        def decode(self, ids: list[int]) -> str:
            return "".join("<eos>" if i == 0 else ALPHABET[i - 2] for i in ids if i != 1)

    m = Transformer(ModelConfig(vocab_size=64, hidden_size=32, num_hidden_layers=1, n_routed_experts=None)).eval()
    with torch.no_grad():
        m.model.norm.weight.zero_()  # all logits 0: greedy picks id 0 (= eos here) with probability 1/64
    c = generate(m, EosIsZero(), ["abc"], GenerationConfig(max_new_tokens=5, temperature=0))[0]
    assert isinstance(c, Completion)
    assert (c.finish_reason, c.token_ids, c.text) == ("eos", [0], "")
    assert c.logprobs == pytest.approx([-math.log(64)])
    assert c.prompt_token_ids == [2, 3, 4]


def test_bad_inputs_are_clear(model):
    with pytest.raises(ValueError, match="prompt 1 has no tokens"):
        generate_ids(model, [[3], []], GenerationConfig(max_new_tokens=2))
    with pytest.raises(ValueError, match="outside the model vocabulary 0..63"):
        generate_ids(model, [[64]], GenerationConfig(max_new_tokens=2))
    with pytest.raises(ValueError, match="stop strings need a tokenizer"):
        generate_ids(model, [[3]], GenerationConfig(max_new_tokens=2, stop=["x"]))
    with pytest.raises(pydantic.ValidationError):
        GenerationConfig(temperature=-1)
    with pytest.raises(pydantic.ValidationError):
        GenerationConfig(max_tokens=5)
    assert generate_ids(model, [], GenerationConfig()) == []
