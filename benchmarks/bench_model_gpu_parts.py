"""Pieces of bench_model_gpu.py: model shapes, decode variants, byte counts and the greedy comparison."""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass

import torch

import bench_model


@dataclass
class GreedyRun:
    tokens: list  # [b, 1] per step
    logits: list  # fp32 [b, V]: logits[i] chose tokens[i] (logits[0] is the prefill's)


def compare_greedy(ref: GreedyRun, run: GreedyRun) -> str:
    """'identical (N tokens)', or where the first row diverges with the reference's top-2 gap there and the
    variant's logit error at that step (same token history up to it, so the error is the kernels' own):
    gap <= 2 * error is a near-tie flip that any reordering of bf16 sums can cause."""
    a, b = torch.cat(ref.tokens, 1), torch.cat(run.tokens, 1)
    step1_err = float((run.logits[1] - ref.logits[1]).abs().max()) if len(ref.logits) > 1 else 0.0
    same = (a == b).all(1)
    if bool(same.all()):
        return f"identical ({a.numel()} tokens; step-1 max|dlogit| {step1_err:.3f})"
    first = [int((a[r] != b[r]).nonzero()[0]) for r in range(a.shape[0]) if not bool(same[r])]
    row = next(r for r in range(a.shape[0]) if not bool(same[r]))
    step = int((a[row] != b[row]).nonzero()[0])
    top2 = ref.logits[step][row].topk(2).values
    gap = float(top2[0] - top2[1])
    err = float((run.logits[step][row] - ref.logits[step][row]).abs().max())
    kind = "near-tie flip" if gap <= 2 * err else "DIFFERENT"
    return (f"{kind}: {len(first)}/{a.shape[0]} rows differ, first at step {min(first)}; row {row} step {step}: "
            f"eager top-2 gap {gap:.4f} vs logit error {err:.4f}; step-1 max|dlogit| {step1_err:.3f}")


def decode_variants(args, model):
    """variants(batch) -> [(label, DecodeKernels)] in the order measured (cheap levers first)."""
    from core_model import kernels
    from core_model.cuda_graph import DecodeKernels
    from core_model.model import GEMV_MAX_ROWS

    triton = kernels.available(args.device)
    graph = "graph" if args.device.startswith("cuda") else "static step"
    k = model.config.num_experts_per_tok or 1
    mode = args.compile_mode

    def variants(b: int) -> list:
        gemv = b * k <= GEMV_MAX_ROWS
        out = [(f"{graph} (today)", DecodeKernels())]
        if triton:
            out.append((f"{graph} + triton attention", DecodeKernels(attention="triton")))
            if gemv:
                out.append((f"{graph} + expert GEMV", DecodeKernels(experts="gemv")))
        if args.variants != "basic":
            out.append((f"{graph} + compile", DecodeKernels(compile="regional", compile_mode=mode)))
            if triton:
                out.append((f"{graph} + compile + triton attention",
                            DecodeKernels(compile="regional", compile_mode=mode, attention="triton")))
                if gemv:
                    out.append((f"{graph} + compile + triton attention + expert GEMV",
                                DecodeKernels(compile="regional", compile_mode=mode, attention="triton", experts="gemv")))
            if args.full_compile:
                out.append((f"{graph} + full compile" + (" + triton attention" if triton else ""),
                            DecodeKernels(compile="full", compile_mode=mode, attention="triton" if triton else "torch",
                                          experts="gemv" if triton and gemv else "grouped")))
        if args.variants not in ("all", "basic"):
            wanted = {w.strip() for w in args.variants.split(",")}
            out = [(label, kern) for label, kern in out if label in wanted or kern.label() in wanted]
        return out

    return variants


def routed_expert_bytes(model) -> tuple[int, list[tuple[object, int]]]:
    """(bytes of all routed experts, [(MoE module, bytes of one expert)]) of a core_model Transformer."""
    from core_model.model import MoE

    total, layers = 0, []
    for m in model.modules():
        if isinstance(m, MoE):
            per = sum(p.numel() * p.element_size() for p in m.experts[0].parameters())
            total += per * len(m.experts)
            layers.append((m, per))
    return total, layers


def bytes_per_decode_step(model, fields: dict, batch: int, context: int, dtype: torch.dtype) -> dict:
    """HBM bytes one decode step must read, from the router's last decision (the step just run)."""
    elem = torch.empty((), dtype=dtype).element_size()
    all_params = sum(p.numel() * p.element_size() for p in model.parameters())
    experts_total, layers = routed_expert_bytes(model)
    embed = model.model.embed_tokens.weight
    dense = all_params - experts_total - embed.numel() * embed.element_size() + batch * embed.shape[1] * elem
    hit = sum(int((m.last_load > 0).sum()) * per for m, per in layers)
    kv = batch * context * bench_model.expected_kv_bytes(fields, dtype)
    return {"dense": dense, "experts": hit, "kv": kv, "total": dense + hit + kv}


def mb(n: float) -> str:
    return f"{n / 1e9:.2f} GB" if n >= 1e9 else f"{n / 1e6:.2f} MB"


def tiny_fields() -> dict:
    from core_model.presets import model_preset

    fields = model_preset("tiny")
    fields["vocab_size"] = 2048
    return fields


def train_fields() -> dict:
    """DeepSeek-V2-Lite's layer shapes at 12 layers: ~1.0B active parameters without embeddings (6 of 64
    routed experts + 2 shared per MoE layer), ~7B in all."""
    from core_model.presets import model_preset

    return {**model_preset("v2-lite"), "num_hidden_layers": 12}


def env_lines(device: str) -> list[str]:
    """What ran: torch, Triton, the device; and the FP8 lever's status."""
    triton = importlib.util.find_spec("triton")
    version = "absent"
    if triton is not None:
        import triton as t

        version = t.__version__
    lines = [f"torch {torch.__version__}, triton {version}, device {device}"]
    if device.startswith("cuda") and torch.cuda.is_available():
        p = torch.cuda.get_device_properties(device)
        lines.append(f"GPU {p.name}, {p.total_memory / 2**30:.0f} GiB, {p.multi_processor_count} SMs, "
                     f"capability {p.major}.{p.minor}")
        lines.append("fp8 weights: not measured (lever not implemented: needs scaled-matmul weights and an "
                     "activation-scale path; see docs/core_model.md)")
    return lines
