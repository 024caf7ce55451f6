"""GPU decode and train-step benchmark: DeepSeek-V2-Lite-shaped random weights in bf16, core_model vs transformers.

    python benchmarks/bench_model_gpu.py --train               # one CUDA GPU (H200: ~5 min, compile included)
    TRITON_INTERPRET=1 python benchmarks/bench_model_gpu.py --device cpu --tiny --train   # CPU check of the paths

Decode: for each batch size, an eager reference (no CUDA graph) runs G greedy steps; then every decode variant
(CUDA graph of the eager step, + Triton MLA attention, + Triton expert GEMV, + regional torch.compile, ...)
starts from the same prefilled cache, runs the same G greedy steps (tokens compared with the reference: on a
divergence the row shows the reference's top-2 logit gap there and the variant's logit error at that step, so
a near-tie flip is told from a wrong kernel), then is timed. Every row is printed as soon as it is measured;
a variant that fails prints its error as its row. Roofline: bytes one step must read (dense weights, the
routed experts the router hit, the KV cache) / step time / peak bandwidth (--hbm-tbps, 4.8 for an H200).
--train: one forward+backward of a ~1B-active-parameter DeepSeek-V2 model in bf16 on both sides, FLOPs
counted by torch.utils.flop_counter, MFU against --peak-tflops (989: H200 bf16 dense).
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import gc
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_model  # noqa: E402  (the shared harness; also puts the repo root on sys.path)
from bench_model_gpu_parts import (  # noqa: E402
    GreedyRun, RouteLog, bytes_per_decode_step, compare_greedy, decode_variants, env_lines, mb, train_fields, tiny_fields)


class Report:
    """Rows printed as they come (so a timeout still leaves data), and again as one table at the end."""

    def __init__(self, out_path: str | None):
        self.rows: list[tuple] = []
        self.out = open(out_path, "a") if out_path else None

    def line(self, text: str) -> None:
        print(text, flush=True)
        if self.out:
            self.out.write(text + "\n")
            self.out.flush()

    def row(self, *cells) -> None:
        cells = tuple(str(c) for c in cells) + ("",) * (5 - len(cells))
        self.rows.append(cells)
        self.line("ROW | " + " | ".join(cells))


def run_greedy(step, logits: torch.Tensor, steps: int, device: str, routes, forced: list | None = None) -> GreedyRun:
    """`steps` greedy decode steps from the prefill's last logits (or the `forced` tokens: teacher forcing);
    keeps every step's logits and routing."""
    run = GreedyRun([], [logits.float()], [None])
    for i in range(steps):
        tok = run.logits[-1].argmax(-1, keepdim=True) if forced is None else forced[i]
        run.tokens.append(tok)
        run.logits.append(step(tok).float().clone())
        run.routes.append(routes.read())
    bench_model.sync(device)
    return run


def time_steps(step, last: torch.Tensor, chunks: int, per_chunk: int, device: str) -> float:
    """Median seconds per greedy step over `chunks` timed chunks."""
    times = []
    for _ in range(chunks):
        bench_model.sync(device)
        t0 = time.perf_counter()
        for _ in range(per_chunk):
            last = step(last.argmax(-1, keepdim=True))
        bench_model.sync(device)
        times.append((time.perf_counter() - t0) / per_chunk)
    return statistics.median(times)


def decode_batch(model, theirs, fields, args, b: int, rep: Report, dtype, t_start: float, variants) -> None:
    """Reference, every variant, transformers, at batch b."""
    from core_model.cache import KVCache

    dev, g = args.device, args.greedy_steps
    ids = torch.randint(0, fields["vocab_size"], (b, args.context), device=dev)
    max_len = args.context + g + args.chunks * args.new_tokens + 4

    def prefill():
        cache = KVCache(b, max_len, dev)
        with torch.no_grad():
            for s in range(0, args.context, args.prefill_chunk):
                logits = model(ids[:, s : s + args.prefill_chunk], cache=cache)
        return cache, logits[:, -1]

    routes = RouteLog(model)
    with torch.no_grad():
        cache, last = prefill()
        eager = lambda tok: model(tok, cache=cache)[:, -1]  # noqa: E731
        ref = run_greedy(eager, last, g, dev, routes)
        gb = bytes_per_decode_step(model, fields, b, args.context + g, dtype, ref.routes[-1])
        step_s = time_steps(eager, ref.logits[-1], 1, min(8, args.new_tokens), dev)
    del cache
    def roof(s: float, kernels=None) -> str:  # fp8 experts read half the expert bytes
        total = gb["total"] - (gb["experts"] / 2 if kernels is not None and kernels.experts == "fp8" else 0)
        return f"{total / s / (args.hbm_tbps * 1e12):.1%}"

    rep.line(f"batch {b}: bytes/step {mb(gb['total'])} (dense {mb(gb['dense'])}, experts hit {mb(gb['experts'])}, "
             f"KV {mb(gb['kv'])}) at {args.hbm_tbps} TB/s")
    rep.row(f"b{b} eager, no graph (reference)", f"{b / step_s:,.1f} tok/s", roof(step_s), "reference", "")
    for label, kernels in variants(b):
        if time.perf_counter() - t_start > args.budget_s:
            rep.row(f"b{b} {label}", "skipped", "", "", f"time budget {args.budget_s:.0f}s spent")
            continue
        try:
            with torch.no_grad():
                cache, last = prefill()
                t0 = time.perf_counter()
                step = make_step(model, cache, kernels, dev)
                setup = time.perf_counter() - t0
                run = run_greedy(step, last, g, dev, routes, forced=ref.tokens)
                step_s = time_steps(step, run.logits[-1], args.chunks, args.new_tokens, dev)
            rep.row(f"b{b} {label}", f"{b / step_s:,.1f} tok/s", roof(step_s, kernels), compare_greedy(ref, run),
                    f"setup {setup:.1f}s")
        except Exception as e:  # a lever that fails is a result, not the end of the run
            rep.row(f"b{b} {label}", "FAILED", "", "", f"{type(e).__name__}: {str(e)[:200]}".replace("\n", " "))
        finally:
            cache = step = None
            gc.collect()
    routes.close()
    if theirs is not None:
        side = bench_model.Theirs(theirs, dev)
        with torch.no_grad():
            tcache, tlast = side.prefill(ids, max_len)
            step_s = time_steps(lambda tok: side.step(tcache, tok), tlast, args.chunks, args.new_tokens, dev)
        rep.row(f"b{b} transformers (eager)", f"{b / step_s:,.1f} tok/s", roof(step_s), "", "")
        del tcache


def make_step(model, cache, kernels, device: str):
    """A CUDA graph of the step with these kernels (CUDA), or the step itself (CPU check)."""
    from core_model.cuda_graph import DecodeStep, GraphedDecoder

    if device.startswith("cuda"):
        return GraphedDecoder(model, cache, kernels=kernels).step
    return DecodeStep(model, cache, kernels)


def train_rows(args, rep: Report) -> None:
    """MFU of one bf16 forward+backward, both sides, same config and weights."""
    fields = tiny_fields() if args.tiny else train_fields()
    dtype = torch.bfloat16
    ours, theirs = bench_model.build_pair(fields, args.device, dtype, via_disk=False, seed=args.seed)
    active = sum(p.numel() for n, p in ours.named_parameters() if ".experts." not in n and "embed_tokens" not in n)
    per_expert = sum(p.numel() for p in next(m for m in ours.modules() if hasattr(m, "w13")).experts[0].parameters())
    n_moe = sum(1 for m in ours.modules() if hasattr(m, "w13"))
    active += n_moe * fields["num_experts_per_tok"] * per_expert
    b, s = (2, 64) if args.tiny else (args.train_batch, args.train_seq)
    ids = torch.randint(0, fields["vocab_size"], (b, s + 1), device=args.device)
    sides = [bench_model.Ours(ours, args.device), bench_model.Theirs(theirs, args.device)]
    moes = [m for m in ours.modules() if hasattr(m, "train_grouped")]

    def experts(grouped: bool | None) -> None:  # None: the default (grouped on CUDA)
        for m in moes:
            m.train_grouped = grouped

    experts(False)  # counted on the loop: the same math, and every torch counts plain matmuls
    flops = bench_model.step_flops(sides[0], ids)
    loop = bench_model.time_train_step(sides[:1], ids, args.repeats, args.device)["core_model"]
    experts(None)
    step = bench_model.time_train_step(sides, ids, args.repeats, args.device)
    peak = args.peak_tflops * 1e12
    mfu = {k: flops / v / peak for k, v in step.items()}
    rep.line(f"train: {fields['num_hidden_layers']} layers, hidden {fields['hidden_size']}, "
             f"{fields['n_routed_experts']} experts top-{fields['num_experts_per_tok']}: {active / 1e9:.2f}B active "
             f"params (no embeddings), batch {b} x {s}, {flops / 1e9:,.1f} GFLOP/step, peak {args.peak_tflops} TFLOP/s")
    rep.row("train step ms (bf16 fwd+bwd)", f"{step['core_model'] * 1e3:,.1f}", f"{step['transformers'] * 1e3:,.1f}",
            f"{step['transformers'] / step['core_model']:.2f}x", "")
    rep.row("train MFU", f"{mfu['core_model']:.1%}", f"{mfu['transformers']:.1%}", "", ">= 30%")
    rep.row("train step ms, per-expert loop", f"{loop * 1e3:,.1f}", "", f"MFU {flops / loop / peak:.1%}",
            "the experts' training path before the grouped one")


def train_phase(args, rep: Report) -> None:
    """Train rows; a failure is a row (core_model's decode model stays on the device beside it)."""
    gc.collect()
    if args.device.startswith("cuda"):
        torch.cuda.empty_cache()
    try:
        train_rows(args, rep)
    except Exception as e:
        rep.row("train", "FAILED", "", "", f"{type(e).__name__}: {str(e)[:200]}".replace("\n", " "))


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    bench_model.add_common_args(p)
    p.set_defaults(device="cuda")
    p.add_argument("--tiny", action="store_true", help="tiny model and short context (CPU check of the code paths)")
    p.add_argument("--batches", type=int, nargs="+", help="decode batch sizes (default: 1 32)")
    p.add_argument("--greedy-steps", type=int, default=24, help="greedy steps compared with the eager reference")
    p.add_argument("--variants", default="all", help="'all', 'basic' (no compile), or comma-separated labels")
    p.add_argument("--compile-mode", default=None, help="torch.compile mode, e.g. max-autotune-no-cudagraphs")
    p.add_argument("--full-compile", action="store_true", help="also whole-step torch.compile rows (slow to compile)")
    p.add_argument("--train", action="store_true", help="also the bf16 train-step MFU rows")
    p.add_argument("--train-batch", type=int, default=8)
    p.add_argument("--train-seq", type=int, default=2048)
    p.add_argument("--no-transformers", action="store_true", help="skip transformers' decode rows")
    p.add_argument("--budget-s", type=float, default=330, help="skip decode variants once this much time is spent")
    p.add_argument("--full-budget-s", type=float, default=390, help="start no whole-step compile after this")
    p.add_argument("--hbm-tbps", type=float, default=4.8, help="peak memory bandwidth in TB/s (H200: 4.8)")
    p.add_argument("--peak-tflops", type=float, default=989.0, help="bf16 dense peak TFLOP/s (H200 SXM: 989)")
    p.add_argument("--out", default=os.environ.get("OUT") and os.path.join(os.environ["OUT"], "bench_model_gpu.txt"),
                   help="also append every line here (default: $OUT/bench_model_gpu.txt when $OUT is set)")
    args = p.parse_args(argv)
    defaults = dict(context=128, new_tokens=4, chunks=3, repeats=2, batches=[1, 4]) if args.tiny else \
        dict(context=2048, new_tokens=16, chunks=5, repeats=3, batches=[1, 32])
    for k, v in defaults.items():
        if getattr(args, k, None) is None:
            setattr(args, k, v)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("bench_model_gpu: error: no CUDA device (torch.cuda.is_available() is False); run it on a GPU "
              "machine, or check the code paths here with: --device cpu --tiny", file=sys.stderr)
        return 2
    if args.device == "cpu":
        torch.set_num_threads(args.threads)
    rep, t0 = Report(args.out), time.perf_counter()
    # Every compiled variant recompiles the same regions with other kernel switches and batch sizes, and once
    # per layer here (RouteLog's hooks pass each router its layer number, a constant to dynamo): past dynamo's
    # limit (8 by default) the remaining layers would silently run uncompiled. `generate` has no such hooks.
    dynamo = torch._dynamo.config
    setattr(dynamo, "recompile_limit" if hasattr(dynamo, "recompile_limit") else "cache_size_limit", 2048)
    for line in env_lines(args.device):
        rep.line(line)
    from core_model.presets import model_preset

    fields = tiny_fields() if args.tiny else model_preset("v2-lite")
    dtype = torch.bfloat16
    torch.manual_seed(args.seed)
    ours, theirs = bench_model.build_pair(fields, args.device, dtype, via_disk=False, seed=args.seed)
    rep.line(f"built the {'tiny' if args.tiny else 'v2-lite-shaped'} pair in {time.perf_counter() - t0:.0f}s; logits max |diff| vs transformers "
             f"{bench_model.parity([bench_model.Ours(ours, args.device), bench_model.Theirs(theirs, args.device)], fields['vocab_size'], args.device):.3e}")
    rep.row("variant", "tok/s", "HBM roofline", "greedy vs eager", "notes")
    variants = decode_variants(args, ours)
    for b in args.batches:  # whole-step compiles (slow to build) come after the train rows
        decode_batch(ours, None if args.no_transformers else theirs, fields, args, b, rep, dtype, t0,
                     lambda b: [v for v in variants(b) if v[1].compile != "full"])
    del theirs  # not needed below; frees its weights for the train step
    if args.train:
        train_phase(args, rep)
    if args.full_compile:
        args.budget_s = args.full_budget_s  # not started past this; one started is bounded by the caller's timeout
        for b in args.batches:
            decode_batch(ours, None, fields, args, b, rep, dtype, t0,
                         lambda b: [v for v in variants(b) if v[1].compile == "full"])
    bench_model.print_table(f"{'tiny' if args.tiny else 'v2-lite'}: bf16, {args.device}, ctx {args.context}", rep.rows)
    rep.line(f"total {time.perf_counter() - t0:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
