"""The Triton kernel checks of test_decode_kernels.py, runnable on CUDA in the test process or, on a CPU-only
machine, as a script under TRITON_INTERPRET=1 in a subprocess of its own: Triton reads that variable once per
process, and an interpreter-mode Triton breaks later real compiles (inductor's) in the same process.

    TRITON_INTERPRET=1 python tests/core_model/triton_checks.py     # prints {check: "ok" | error} as JSON
"""
from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path

import torch

V2 = dict(model_type="deepseek_v2", vocab_size=64, hidden_size=32, intermediate_size=64, moe_intermediate_size=16,
          num_hidden_layers=3, num_attention_heads=2, kv_lora_rank=16, qk_nope_head_dim=8, qk_rope_head_dim=4,
          v_head_dim=8, n_routed_experts=4, num_experts_per_tok=2, n_shared_experts=1, first_k_dense_replace=1)


def mla_decode(device: str, dtype: torch.dtype, tol: float) -> None:
    from core_model import kernels

    torch.manual_seed(0)
    b, h, r, dr, t = 3, 4, 32, 8, 300  # 300 rows: several cache slices merged by the second kernel
    q, qp = torch.randn(b, h, r, dtype=dtype, device=device), torch.randn(b, h, dr, dtype=dtype, device=device)
    c, kp = torch.randn(b, t, r, dtype=dtype, device=device), torch.randn(b, t, dr, dtype=dtype, device=device)
    mask = torch.rand(b, t, device=device) > 0.3
    mask[0, :200] = False  # whole slices masked out for one row
    mask[:, -1] = True
    if device == "cpu":
        assert kernels._splits(b, t, torch.device(device))[0] > 1
    out = kernels.mla_decode(q, qp, c, kp, mask, 0.3)
    ref = kernels.mla_decode_reference(q.float(), qp.float(), c.float(), kp.float(), mask, 0.3)
    torch.testing.assert_close(out.float(), ref, atol=tol, rtol=tol)
    full = torch.ones(1, 40, dtype=torch.bool, device=device)
    torch.library.opcheck(kernels.mla_decode, (q[:1], qp[:1], c[:1, :40], kp[:1, :40], full, 0.3),
                          test_utils=("test_schema", "test_faketensor"))


def expert_gemv(device: str) -> None:
    from core_model import kernels

    torch.manual_seed(0)
    x, w = torch.randn(5, 200, device=device), torch.randn(7, 40, 200, device=device)
    ids = torch.tensor([3, 0, 6, 3, 1], device=device)
    tol = 1e-4 if device == "cpu" else 2e-3  # CUDA: tf32-free fp32 sums in another order
    torch.testing.assert_close(kernels.expert_gemv(x, w, ids), kernels.expert_gemv_reference(x, w, ids),
                               atol=tol, rtol=tol)
    torch.library.opcheck(kernels.expert_gemv, (x, w, ids), test_utils=("test_schema", "test_faketensor"))


def in_model(device: str) -> None:
    """Both kernels inside the model's fixed-shape decode step (no graph) match eager decoding."""
    from core_model import ModelConfig, Transformer
    from core_model.cache import KVCache
    from core_model.cuda_graph import DecodeKernels, DecodeStep

    torch.manual_seed(0)
    model = Transformer(ModelConfig.from_dict(V2)).eval()
    with torch.no_grad():  # sharper attention than the 0.02-std init, whose near-uniform softmax hides errors
        for name, p in model.named_parameters():
            if "self_attn" in name and "layernorm" not in name:
                p.mul_(6)
    model.to(device).pack_experts()
    if device != "cpu":  # grouped matmuls (what GEMV replaces) take bf16 on CUDA
        model.to(torch.bfloat16).pack_experts()

    def decode(kernels_):
        torch.manual_seed(1)
        ids = torch.randint(1, 64, (2, 6), device=device)
        mask = torch.ones(2, 6, dtype=torch.bool, device=device)
        mask[1, :2] = False
        cache = KVCache(2, 11, device)
        out = []
        with torch.no_grad():
            last = model(ids, attention_mask=mask, cache=cache)[:, -1]
            step = (lambda tok: model(tok, cache=cache)[:, -1]) if kernels_ is None else DecodeStep(model, cache, kernels_)
            for _ in range(5):
                last = step(last.argmax(-1, keepdim=True))
                out.append(last)
        return torch.stack(out).float(), cache

    ref, _ = decode(None)
    got, cache = decode(DecodeKernels(attention="triton", experts="gemv"))
    tol = 1e-4 if device == "cpu" else 3e-2
    torch.testing.assert_close(got, ref, atol=tol, rtol=tol)
    assert cache.length == 11 and int(cache.slot) == 11
    assert all(m.decode_kernel == "torch" for m in model.modules() if hasattr(m, "decode_kernel"))  # restored


CHECKS = {
    "mla_decode_fp32": lambda d: mla_decode(d, torch.float32, 1e-5 if d == "cpu" else 2e-3),
    "mla_decode_bf16": lambda d: mla_decode(d, torch.bfloat16, 2e-2),
    "expert_gemv": expert_gemv,
    "in_model": in_model,
}


def main() -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    torch.set_num_threads(1)
    results = {}
    for name, check in CHECKS.items():
        try:
            check("cpu")
            results[name] = "ok"
        except Exception:
            results[name] = traceback.format_exc(limit=-3)
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
