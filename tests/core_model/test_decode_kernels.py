"""Decode-step variants (what the CUDA graph captures): Triton kernels and torch.compile against eager.

The Triton kernels are compiled on CUDA, or on a CPU-only machine run under TRITON_INTERPRET=1 in a
subprocess (triton_checks.py); torch.compile runs with the aot_eager backend
(tracing, regions and recompiles are what is checked; inductor's code generation is checked on the GPU by
benchmarks/bench_model_gpu.py).
"""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
import triton_checks  # noqa: E402

from core_model import ModelConfig, Transformer, kernels  # noqa: E402
from core_model.cache import KVCache  # noqa: E402
from core_model.cuda_graph import EAGER, DecodeKernels, DecodeStep  # noqa: E402

torch.set_num_threads(1)
CUDA = torch.cuda.is_available()
needs_triton = pytest.mark.skipif(importlib.util.find_spec("triton") is None,
                                  reason="triton is not installed (CUDA builds of torch ship it; on a CPU-only "
                                         "machine `pip install triton` runs these checks under its interpreter)")
V2 = triton_checks.V2


@pytest.fixture(scope="module")
def interpreted() -> dict:
    """CPU-only machines: every Triton check run once under TRITON_INTERPRET=1 in a subprocess (the
    interpreter is a per-process switch that would break later real compiles here)."""
    env = {**os.environ, "TRITON_INTERPRET": "1",
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[2]), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, triton_checks.__file__], env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@needs_triton
@pytest.mark.parametrize("name", list(triton_checks.CHECKS))
def test_triton_kernels_match_reference(name, request):
    """The kernels against their plain-torch definitions and inside the model: compiled on CUDA when there
    is one (never the interpreter there), else interpreted on CPU."""
    if CUDA:
        triton_checks.CHECKS[name]("cuda")
    else:
        result = request.getfixturevalue("interpreted")[name]
        assert result == "ok", result


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
    assert DecodeKernels().resolved("cpu") == EAGER  # auto: never the Triton interpreter outside tests
    if CUDA and kernels.available("cuda"):
        assert DecodeKernels().resolved("cuda") == DecodeKernels(attention="triton", experts="gemv")
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


def test_fp8_quantization_is_per_row_and_within_e4m3_precision():
    from core_model import fp8

    torch.manual_seed(0)
    w = torch.randn(3, 40, 32, dtype=torch.bfloat16) * torch.logspace(-3, 2, 40)[None, :, None]  # rows of any size
    q, scale = fp8.quantize_rows(w)
    assert q.dtype == torch.float8_e4m3fn and scale.shape == (3, 40)
    back = q.float() * scale[..., None]
    # e4m3 keeps 3 mantissa bits: each value within 1/16 of itself, or of the row's smallest normal step
    tol = w.float().abs() / 16 + scale[..., None] * 2.0 ** -6
    assert bool(((back - w.float()).abs() <= tol).all())
    assert torch.equal(q.float().abs().amax(-1), torch.full((3, 40), fp8.E4M3_MAX))  # each row uses the full range


def test_fp8_grouped_mm_matches_bf16_within_fp8_error():
    from core_model import fp8

    torch.manual_seed(0)
    x = torch.randn(10, 32, dtype=torch.bfloat16)
    w = torch.randn(4, 24, 32, dtype=torch.bfloat16)
    offs = torch.tensor([3, 3, 7, 10], dtype=torch.int32)  # expert 1 gets no rows
    ref = torch._grouped_mm(x.float(), w.float().transpose(1, 2), offs=offs)
    got = fp8.grouped_mm(x, *fp8.quantize_rows(w), offs)
    assert got.dtype == torch.bfloat16 and got.shape == (10, 24)
    rel = (got.float() - ref).norm() / ref.norm()
    assert 0 < rel < 0.06  # quantized (not the bf16 product), and close to it
    wrong = torch.tensor([7, 7, 7, 10], dtype=torch.int32)  # rows 3-6 with expert 0's weights instead
    assert (fp8.grouped_mm(x, *fp8.quantize_rows(w), wrong).float() - ref).norm() / ref.norm() > 0.3


def test_fp8_experts_decode_step_is_close_to_eager():
    """The FP8 experts inside a decode step (emulated off Hopper): logits within fp8 error of eager, the model's
    own weights untouched, and the switch gone after the step."""
    torch.manual_seed(0)
    model = Transformer(ModelConfig.from_dict(V2)).eval().to(torch.bfloat16).pack_experts()
    before = model.model.layers[1].mlp.w13.clone()
    ref, _ = _decode(model, None, steps=1)
    got, _ = _decode(model, DecodeKernels(attention="torch", experts="fp8"), steps=1)
    rel = (got.float() - ref.float()).norm() / ref.float().norm()
    assert 0 < rel < 0.05, rel
    moe = model.model.layers[1].mlp
    assert torch.equal(moe.w13, before) and moe.fp8_experts is None and moe.expert_kernel == "grouped"
    assert DecodeKernels(attention="torch", experts="fp8").label() == "fp8 experts"


@pytest.mark.skipif(not (CUDA and __import__("core_model.fp8").fp8.available("cuda")),
                    reason="FP8 experts need a CUDA GPU of capability >= 9.0 and torch._scaled_grouped_mm")
@pytest.mark.parametrize("compile_", ["off", "regional"])
def test_graphed_fp8_experts_close_to_eager_on_cuda(compile_):
    from core_model.cuda_graph import GraphedDecoder

    torch.manual_seed(0)
    cfg = {**V2, "hidden_size": 64, "moe_intermediate_size": 32}  # the fp8 kernel wants multiples of 16
    model = Transformer(ModelConfig.from_dict(cfg)).cuda().to(torch.bfloat16).eval().pack_experts()
    ids = torch.randint(1, 64, (4, 5), device="cuda")
    caches = [KVCache(4, 16, "cuda"), KVCache(4, 16, "cuda")]
    with torch.no_grad():
        last = [model(ids, cache=c)[:, -1] for c in caches]
        runner = GraphedDecoder(model, caches[1], kernels=DecodeKernels(compile=compile_, experts="fp8"))
        for _ in range(6):
            tok = last[0].argmax(-1, keepdim=True)
            last = [model(tok, cache=caches[0])[:, -1], runner.step(tok).clone()]
            rel = (last[1].float() - last[0].float()).norm() / last[0].float().norm()
            assert 0 < rel < 0.05, rel
