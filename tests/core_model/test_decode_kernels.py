"""Decode-step variants (what the CUDA graph captures): Triton kernels and torch.compile against eager.

The Triton kernels run here under TRITON_INTERPRET=1 (CPU); torch.compile runs with the aot_eager backend
(tracing, regions and recompiles are what is checked; inductor's code generation is checked on the GPU by
benchmarks/bench_model_gpu.py).
"""
from __future__ import annotations

import importlib.util

import pytest
import torch

from core_model import ModelConfig, Transformer, kernels
from core_model.cache import KVCache
from core_model.cuda_graph import DecodeKernels, DecodeStep

torch.set_num_threads(1)
needs_triton = pytest.mark.skipif(importlib.util.find_spec("triton") is None, reason="triton is not installed")
V2 = dict(model_type="deepseek_v2", vocab_size=64, hidden_size=32, intermediate_size=64, moe_intermediate_size=16,
          num_hidden_layers=3, num_attention_heads=2, kv_lora_rank=16, qk_nope_head_dim=8, qk_rope_head_dim=4,
          v_head_dim=8, n_routed_experts=4, num_experts_per_tok=2, n_shared_experts=1, first_k_dense_replace=1)


@pytest.fixture
def interpret(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    kernels._triton.cache_clear()  # kernels are defined for the interpreter only when built under it
    yield
    kernels._triton.cache_clear()


@needs_triton
@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-5), (torch.bfloat16, 2e-2)])
def test_triton_mla_decode_matches_reference(interpret, dtype, tol):
    torch.manual_seed(0)
    b, h, r, dr, t = 3, 4, 32, 8, 300  # 300 rows: several cache slices merged by the second kernel
    q, qp = torch.randn(b, h, r, dtype=dtype), torch.randn(b, h, dr, dtype=dtype)
    c, kp = torch.randn(b, t, r, dtype=dtype), torch.randn(b, t, dr, dtype=dtype)
    mask = torch.rand(b, t) > 0.3
    mask[0, :200] = False  # whole slices masked out for one row
    mask[:, -1] = True
    assert kernels._splits(b, t, torch.device("cpu"))[0] > 1
    out = kernels.mla_decode(q, qp, c, kp, mask, 0.3)
    ref = kernels.mla_decode_reference(q.float(), qp.float(), c.float(), kp.float(), mask, 0.3)
    torch.testing.assert_close(out.float(), ref, atol=tol, rtol=tol)
    full = torch.ones(1, 40, dtype=torch.bool)
    torch.library.opcheck(kernels.mla_decode, (q[:1], qp[:1], c[:1, :40], kp[:1, :40], full, 0.3),
                          test_utils=("test_schema", "test_faketensor"))


@needs_triton
def test_triton_expert_gemv_matches_reference(interpret):
    torch.manual_seed(0)
    x, w, ids = torch.randn(5, 200), torch.randn(7, 40, 200), torch.tensor([3, 0, 6, 3, 1])
    torch.testing.assert_close(kernels.expert_gemv(x, w, ids), kernels.expert_gemv_reference(x, w, ids),
                               atol=1e-4, rtol=1e-4)
    torch.library.opcheck(kernels.expert_gemv, (x, w, ids), test_utils=("test_schema", "test_faketensor"))


def _decode(model, kernels_: DecodeKernels | None, steps: int = 5):
    """Logits of `steps` greedy steps after a left-padded prefill: eager (kernels_ None) or a DecodeStep."""
    torch.manual_seed(1)
    ids = torch.randint(1, 64, (2, 6))
    mask = torch.ones(2, 6, dtype=torch.bool)
    mask[1, :2] = False
    cache = KVCache(2, 6 + steps)
    out = []
    with torch.no_grad():
        last = model(ids, attention_mask=mask, cache=cache)[:, -1]
        step = (lambda tok: model(tok, cache=cache)[:, -1]) if kernels_ is None else DecodeStep(model, cache, kernels_)
        for _ in range(steps):
            last = step(last.argmax(-1, keepdim=True))
            out.append(last)
    return torch.stack(out), cache


@needs_triton
def test_triton_kernels_in_the_model_match_eager(interpret):
    torch.manual_seed(0)
    model = Transformer(ModelConfig.from_dict(V2)).eval().pack_experts()
    ref, _ = _decode(model, None)
    got, cache = _decode(model, DecodeKernels(attention="triton", experts="gemv"))
    torch.testing.assert_close(got, ref, atol=1e-4, rtol=1e-4)
    assert cache.length == 11 and int(cache.slot) == 11
    assert all(m.decode_kernel == "torch" for m in model.modules() if hasattr(m, "decode_kernel"))  # restored


@pytest.mark.parametrize("compile_", ["regional", "full"])
def test_compiled_step_matches_eager_and_compiles_once_per_region(compile_):
    from torch._dynamo.utils import counters

    torch.manual_seed(0)
    model = Transformer(ModelConfig.from_dict(V2)).eval().to(torch.bfloat16).pack_experts()  # grouped mm: bf16
    ref, _ = _decode(model, None)
    torch._dynamo.reset()
    counters.clear()
    got, _ = _decode(model, DecodeKernels(compile=compile_, compile_backend="aot_eager"))
    torch.testing.assert_close(got.float(), ref.float(), atol=2e-2, rtol=2e-2)
    # regional: norm, projection, dense ffn, MoE ffn, each once for all layers; full: one graph, no recompile per step
    assert counters["stats"]["unique_graphs"] == (4 if compile_ == "regional" else 1)
    assert not hasattr(model.model.layers[1], "ffn") or "ffn" not in vars(model.model.layers[1])  # regions removed


def test_static_step_keeps_host_bookkeeping_out_of_the_forward():
    torch.manual_seed(0)
    model = Transformer(ModelConfig.from_dict(V2)).eval()
    cache = KVCache(1, 4)
    with torch.no_grad():
        model(torch.tensor([[1, 2]]), cache=cache)
        cache.make_static()
        saved = cache.snapshot()
        with cache.static_step():
            model(torch.tensor([[3]]), cache=cache)
        assert cache.length == 3 and int(cache.slot) == 3 and int(cache.seen) == 3
        cache.restore(saved)
        assert cache.length == 2 and int(cache.slot) == 2 and int(cache.seen) == 2
        for _ in range(2):
            with cache.static_step():
                model(torch.tensor([[3]]), cache=cache)
        with pytest.raises(ValueError, match="is full"), cache.static_step():
            pass


def test_kernel_choices_are_checked(monkeypatch):
    with pytest.raises(ValueError, match="captures CUDA graphs of its own"):
        DecodeKernels(compile="regional", compile_mode="reduce-overhead")
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    model = Transformer(ModelConfig.from_dict(V2)).eval()
    cache = KVCache(1, 4)
    with torch.no_grad():
        model(torch.tensor([[1, 2]]), cache=cache)
    with pytest.raises(ValueError, match="Triton kernels cannot run on cpu"):
        DecodeStep(model, cache, DecodeKernels(attention="triton"))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs and compiled Triton kernels need a CUDA GPU")
@pytest.mark.parametrize("k", [DecodeKernels(attention="triton", experts="gemv"), DecodeKernels(compile="regional"),
                               DecodeKernels(compile="regional", attention="triton")], ids=lambda k: k.label())
def test_graphed_variants_match_eager_on_cuda(k):
    from core_model.cuda_graph import GraphedDecoder

    if not kernels.available("cuda") and k.attention == "triton":
        pytest.skip("triton is not installed")
    torch.manual_seed(0)
    model = Transformer(ModelConfig.from_dict({**V2, "hidden_size": 64})).cuda().to(torch.bfloat16).eval().pack_experts()
    ids = torch.randint(1, 64, (2, 5), device="cuda")
    caches = [KVCache(2, 16, "cuda"), KVCache(2, 16, "cuda")]
    with torch.no_grad():
        last = [model(ids, cache=c)[:, -1] for c in caches]
        runner = GraphedDecoder(model, caches[1], kernels=k)
        for _ in range(8):
            tok = last[0].argmax(-1, keepdim=True)
            last = [model(tok, cache=caches[0])[:, -1], runner.step(tok).clone()]
            torch.testing.assert_close(last[1], last[0], atol=3e-2, rtol=3e-2)  # bf16
