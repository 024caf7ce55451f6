"""GPU decode benchmark: DeepSeek-V2-Lite-shaped random weights in bf16, core_model vs transformers.

    python benchmarks/bench_model_gpu.py                      # one CUDA GPU (H200: ~3 min)
    python benchmarks/bench_model_gpu.py --device cpu --tiny  # the same code paths on CPU, tiny model

Reports decode tokens/s at batch 1 and 32 and each side's fraction of the HBM-bandwidth roofline:
bytes per decode step = weights the step touches (all dense weights, plus only the routed experts
the batch actually hit, counted from the router) + the KV cache read, divided by the step time and
the peak bandwidth (--hbm-tbps, 4.8 for an H200). Shares its harness with bench_model.py; weights are
made on the device by transformers and copied into core_model in memory (no 30 GB checkpoint on disk).
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_model  # noqa: E402  (the shared harness; also puts the repo root on sys.path)


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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    bench_model.add_common_args(p)
    p.set_defaults(device="cuda")
    p.add_argument("--tiny", action="store_true", help="tiny model and short context (CPU check of the code paths)")
    p.add_argument("--dtype", choices=["bfloat16", "float16", "float32"], help="default: bfloat16 (float32 with --tiny)")
    p.add_argument("--batches", type=int, nargs="+", help="decode batch sizes (default: 1 32)")
    p.add_argument("--loop-ablation", action="store_true",
                   help="also time core_model's decode without CUDA graphs, and with the per-expert loop")
    p.add_argument("--hbm-tbps", type=float, default=4.8, help="peak memory bandwidth in TB/s (H200: 4.8)")
    args = p.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("bench_model_gpu: error: no CUDA device (torch.cuda.is_available() is False); run it on a GPU "
              "machine, or check the code paths here with: --device cpu --tiny", file=sys.stderr)
        return 2
    defaults = dict(context=128, new_tokens=4, chunks=3, repeats=2, batches=[1, 4]) if args.tiny else \
        dict(context=2048, new_tokens=16, chunks=5, repeats=3, batches=[1, 32])
    for k, v in defaults.items():
        if getattr(args, k, None) is None:
            setattr(args, k, v)
    args.train_batch = 0  # decode only: training a 16B model is not what this measures
    dtype = getattr(torch, args.dtype or ("float32" if args.tiny else "bfloat16"))
    if args.device == "cpu":
        torch.set_num_threads(args.threads)
    from core_model.presets import model_preset

    fields = tiny_fields() if args.tiny else model_preset("v2-lite")
    log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    t0 = time.perf_counter()
    context_mid = args.context + args.new_tokens * args.chunks // 2  # the context grows while timing

    def roofline(batch: int, sides, entry: dict) -> None:
        entry["bytes"] = bytes_per_decode_step(sides[0].model, fields, batch, context_mid, dtype)
        entry["roofline"] = {k: entry["bytes"]["total"] / s / (args.hbm_tbps * 1e12) for k, s in entry["step_s"].items()}

    rows, raw = bench_model.run(args, fields, dtype, via_disk=False, log=log, on_decoded=roofline,
                                loop_ablation=args.loop_ablation)
    for b in args.batches:
        entry = raw["decode"][b]
        gb = entry["bytes"]
        rows.append((f"HBM roofline (batch {b})", f"{entry['roofline']['core_model']:.1%}",
                     f"{entry['roofline']['transformers']:.1%}", "",
                     f"{mb(gb['total'])}/step (dense {mb(gb['dense'])}, experts {mb(gb['experts'])}, "
                     f"KV {mb(gb['kv'])}) at {args.hbm_tbps} TB/s"))
    name = "tiny" if args.tiny else "v2-lite"
    bench_model.print_table(f"{name}: {dtype}, {args.device}, ctx {args.context}; decode medians, sides alternating",
                            rows)
    print(f"total {time.perf_counter() - t0:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
