"""Fixed-shape cache mode (what CUDA-graph decoding replays): same logits as the growing cache."""
from __future__ import annotations

import pytest
import torch

from core_model import ModelConfig, Transformer
from core_model.cache import KVCache

torch.set_num_threads(1)

V2 = dict(model_type="deepseek_v2", vocab_size=64, hidden_size=32, intermediate_size=64, moe_intermediate_size=16,
          num_hidden_layers=2, num_attention_heads=2, kv_lora_rank=16, qk_nope_head_dim=8, qk_rope_head_dim=4,
          v_head_dim=8, n_routed_experts=4, num_experts_per_tok=2, n_shared_experts=1, first_k_dense_replace=1)
LLAMA = dict(model_type="llama", vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
             num_attention_heads=4, num_key_value_heads=2)


@pytest.mark.parametrize("fields", [V2, LLAMA], ids=["mla", "gqa"])
def test_static_decode_matches_the_growing_cache(fields):
    torch.manual_seed(0)
    model = Transformer(ModelConfig.from_dict(fields)).eval()
    ids = torch.randint(1, 64, (2, 6))
    mask = torch.ones(2, 6, dtype=torch.bool)
    mask[1, :2] = False  # a left-padded row
    caches = [KVCache(2, 12), KVCache(2, 12)]
    with torch.no_grad():
        last = [model(ids, attention_mask=mask, cache=c)[:, -1] for c in caches]
        caches[1].make_static()
        for _ in range(6):
            tok = last[0].argmax(-1, keepdim=True)
            last = [model(tok, cache=c)[:, -1] for c in caches]
            torch.testing.assert_close(last[1], last[0], atol=1e-5, rtol=1e-5)
        assert caches[1].length == caches[0].length == 12 and int(caches[1].slot) == 12
        with pytest.raises(ValueError, match="is full"):
            model(tok, cache=caches[1])


def test_static_mode_needs_a_prefill():
    with pytest.raises(ValueError, match="filled cache"):
        KVCache(1, 8).make_static()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a CUDA GPU")
def test_graphed_decoder_matches_eager_on_cuda():
    from core_model.cuda_graph import GraphedDecoder, graphed_decoder

    torch.manual_seed(0)
    model = Transformer(ModelConfig.from_dict({**V2, "hidden_size": 64})).cuda().eval()
    assert graphed_decoder(model, KVCache(1, 4, "cuda")) is None  # unpacked fp32 experts: eager decode
    model = model.to(torch.bfloat16).pack_experts()  # grouped experts: no host sync, capturable
    ids = torch.randint(1, 64, (2, 5), device="cuda")
    caches = [KVCache(2, 16, "cuda"), KVCache(2, 16, "cuda")]
    with torch.no_grad():
        last = [model(ids, cache=c)[:, -1] for c in caches]
        runner = GraphedDecoder(model, caches[1])
        for _ in range(8):
            tok = last[0].argmax(-1, keepdim=True)
            last = [model(tok, cache=caches[0])[:, -1], runner.step(tok).clone()]
            torch.testing.assert_close(last[1], last[0], atol=2e-2, rtol=2e-2)  # bf16
