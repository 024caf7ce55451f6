"""core_model vs transformers' DeepseekV2ForCausalLM on the same config and the same random weights.

    python benchmarks/bench_model.py            # ~5 min on 2 CPU cores
    python benchmarks/bench_model.py --quick    # ~1 min smoke run

Measures KV-cache bytes per token, prefill tokens/s, decode tokens/s at batch 1 and 8 with a 2k-token
context, and a forward+backward training step. The two sides alternate, each number is a median, and
every ratio is core_model over transformers measured in this run (> 1: core_model is better).
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads OpenMP: idle threads must sleep
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import argparse
import inspect
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def hf_to_ours(state: dict, model_fields: dict) -> dict:
    """transformers' in-memory state dict (fused expert tensors) -> per-expert checkpoint names."""
    out = {}
    inter = model_fields["moe_intermediate_size"]
    for name, t in state.items():
        if name.endswith("mlp.experts.gate_up_proj"):  # [E, 2I, H]: gate rows then up rows
            prefix = name[: -len("gate_up_proj")]
            for e in range(t.shape[0]):
                out[f"{prefix}{e}.gate_proj.weight"] = t[e, :inter]
                out[f"{prefix}{e}.up_proj.weight"] = t[e, inter:]
        elif name.endswith("mlp.experts.down_proj"):  # [E, H, I]
            prefix = name[: -len("down_proj")]
            for e in range(t.shape[0]):
                out[f"{prefix}{e}.down_proj.weight"] = t[e]
        else:
            out[name] = t
    return out


def build_pair(model_fields: dict, device: str, dtype: torch.dtype, via_disk: bool = True, seed: int = 0):
    """(core_model Transformer, transformers DeepseekV2ForCausalLM) with identical random weights.

    via_disk: transformers saves a checkpoint and both load it (CPU); else weights are copied in memory
    (GPU-sized models, where writing 30 GB would dominate the run).
    """
    from transformers import DeepseekV2Config, DeepseekV2ForCausalLM

    from core_model import ModelConfig, Transformer, load_pretrained

    hf_fields = {k: v for k, v in model_fields.items() if k != "model_type"}
    hf_config = DeepseekV2Config(**hf_fields)
    torch.manual_seed(seed)
    if via_disk:
        with tempfile.TemporaryDirectory() as tmp:
            DeepseekV2ForCausalLM(hf_config).save_pretrained(tmp)
            theirs = DeepseekV2ForCausalLM.from_pretrained(tmp, dtype=dtype).to(device)
            ours = load_pretrained(tmp, dtype=dtype, device=device)
    else:
        previous = torch.get_default_dtype()
        torch.set_default_dtype(dtype)
        try:
            with torch.device(device):  # initialise on the device: CPU init of 16B params takes minutes
                theirs = DeepseekV2ForCausalLM(hf_config)
                ours = Transformer(ModelConfig.from_dict(model_fields))
        finally:
            torch.set_default_dtype(previous)
        missing, unexpected = ours.load_state_dict(hf_to_ours(theirs.state_dict(), model_fields), strict=False)
        missing = [m for m in missing if not m.endswith("inv_freq")]
        if missing or unexpected:
            raise RuntimeError(f"weight copy mismatch: missing {missing[:5]}, unexpected {unexpected[:5]}")
        ours.pack_experts()  # as load_pretrained does
    return ours.eval(), theirs.eval()


class Ours:
    """core_model with its preallocated latent KV cache; on CUDA each decode step replays a captured graph.

    cuda_graph / grouped_experts switch those off (the ablation rows of the GPU benchmark)."""

    def __init__(self, model, device: str, cuda_graph: bool = True, grouped_experts: bool = True):
        from core_model.cache import KVCache

        self.model, self.device, self._cache_cls = model, device, KVCache
        self.cuda_graph = cuda_graph and str(device).startswith("cuda")
        self.grouped = grouped_experts
        self.name = "core_model" if cuda_graph and grouped_experts else \
            "core_model, no CUDA graph" + ("" if grouped_experts else ", expert loop")
        self._runners: dict = {}

    def _experts(self, on: bool) -> None:
        from core_model.model import MoE

        for m in self.model.modules():
            if isinstance(m, MoE):
                m.grouped_enabled = on

    def prefill(self, ids: torch.Tensor, max_len: int, chunk: int | None = None):
        """Fill a new cache with ids [b, t]; returns (cache, last logits [b, V])."""
        cache = self._cache_cls(ids.shape[0], max_len, self.device)
        step = chunk or ids.shape[1]
        self._experts(self.grouped)
        try:
            for start in range(0, ids.shape[1], step):
                logits = self.model(ids[:, start : start + step], cache=cache)
        finally:
            self._experts(True)
        return cache, logits[:, -1]

    def prepare_decode(self, cache) -> None:
        """Capture the decode graph for this cache (outside the timed steps), as `generate` does."""
        if self.cuda_graph:
            from core_model.cuda_graph import graphed_decoder

            runner = graphed_decoder(self.model, cache)
            self._runners = {id(cache): runner} if runner is not None else {}

    def step(self, cache, tokens: torch.Tensor) -> torch.Tensor:
        runner = self._runners.get(id(cache))
        if runner is not None:
            return runner.step(tokens).clone()
        self._experts(self.grouped)
        try:
            return self.model(tokens, cache=cache)[:, -1]
        finally:
            self._experts(True)

    def kv_bytes_per_token(self, cache) -> float:
        return cache.nbytes() / (cache.batch_size * cache.max_len)

    def logits(self, ids: torch.Tensor) -> torch.Tensor:
        return self.model(ids)


class Theirs:
    """transformers with its default cache (DynamicCache) and attention implementation."""

    name = "transformers"

    def __init__(self, model, device: str):
        self.model, self.device = model, device
        params = inspect.signature(model.forward).parameters
        self._cache_kw = "cache" if "cache" in params else "past_key_values"

    def prefill(self, ids: torch.Tensor, max_len: int, chunk: int | None = None, all_logits: bool = False):
        out = self.model(input_ids=ids, use_cache=True, logits_to_keep=0 if all_logits else 1)
        return getattr(out, self._cache_kw), out.logits[:, -1]

    def step(self, cache, tokens: torch.Tensor) -> torch.Tensor:
        out = self.model(input_ids=tokens, use_cache=True, logits_to_keep=1, **{self._cache_kw: cache})
        return out.logits[:, -1]

    def kv_bytes_per_token(self, cache) -> float:
        tensors = []
        for layer in getattr(cache, "layers", []):
            tensors += [layer.keys, layer.values]
        if not tensors:  # older transformers: key_cache / value_cache lists
            tensors = list(cache.key_cache) + list(cache.value_cache)
        total = sum(t.numel() * t.element_size() for t in tensors)
        b, t = tensors[0].shape[0], tensors[0].shape[-2]
        return total / (b * t)

    def logits(self, ids: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=ids, use_cache=False).logits


def median_ms(times: list[float]) -> float:
    return 1000 * statistics.median(times)


def time_prefill(sides, ids, repeats: int, device: str) -> tuple[dict, dict]:
    """Median seconds to prefill ids [b, t] on each side, alternating; also returns each side's last state."""
    times, states = {s.name: [] for s in sides}, {}
    for r in range(repeats):
        for side in sides if r % 2 == 0 else sides[::-1]:
            sync(device)
            t0 = time.perf_counter()
            if isinstance(side, Theirs):  # same work as ours: logits for every position
                states[side.name] = side.prefill(ids, ids.shape[1] + 1, all_logits=True)
            else:
                states[side.name] = side.prefill(ids, ids.shape[1] + 1)
            sync(device)
            times[side.name].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}, states


def time_decode(sides, states: dict, new_tokens: int, chunks: int, device: str) -> dict:
    """Median seconds per decode step: greedy chunks of `new_tokens` steps, sides alternating per chunk.

    `states` holds each side's (cache, last logits); the context grows by new_tokens * chunks over the run.
    """
    times = {s.name: [] for s in sides}
    for c in range(chunks):
        for side in sides if c % 2 == 0 else sides[::-1]:
            cache, last = states[side.name]
            sync(device)
            t0 = time.perf_counter()
            for _ in range(new_tokens):
                last = side.step(cache, last.argmax(-1, keepdim=True))
            sync(device)
            times[side.name].append((time.perf_counter() - t0) / new_tokens)
            states[side.name] = (cache, last)
    return {k: statistics.median(v) for k, v in times.items()}


def time_train_step(sides, ids: torch.Tensor, repeats: int, device: str, autocast: bool = False) -> dict:
    """Median seconds of forward + cross-entropy + backward on ids [b, s] (first call is a warm-up);
    autocast: both sides' forward under torch.autocast(bfloat16), the fp32 weights as they are."""
    times = {s.name: [] for s in sides}
    for r in range(repeats + 1):
        for side in sides if r % 2 == 0 else sides[::-1]:
            side.model.train()
            side.model.zero_grad(set_to_none=True)
            sync(device)
            t0 = time.perf_counter()
            with torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=autocast):
                logits = side.logits(ids[:, :-1])
            loss = F.cross_entropy(logits.flatten(0, 1).float(), ids[:, 1:].flatten())
            loss.backward()
            sync(device)
            if r > 0:
                times[side.name].append(time.perf_counter() - t0)
            side.model.zero_grad(set_to_none=True)
            side.model.eval()
    return {k: statistics.median(v) for k, v in times.items()}


def step_flops(side, ids: torch.Tensor) -> float:
    """FLOPs torch counts (matmuls, attention) in one forward + cross-entropy + backward.

    Counted on core_model: transformers runs its routed experts through an op torch's counter does not
    see (its count comes out short by exactly the routed experts' FLOPs); the math is the same.
    """
    from torch.utils.flop_counter import FlopCounterMode

    side.model.train()
    with FlopCounterMode(display=False) as counter:
        logits = side.logits(ids[:, :-1])
        F.cross_entropy(logits.flatten(0, 1).float(), ids[:, 1:].flatten()).backward()
    side.model.zero_grad(set_to_none=True)
    side.model.eval()
    return counter.get_total_flops()


def matmul_peak_flops(dtype: torch.dtype, n: int = 2048, repeats: int = 5) -> float:
    """Best FLOP/s of one large square matmul on this device's threads: what the counted FLOPs can run at."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2 * n**3 / best


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def expected_kv_bytes(fields: dict, dtype: torch.dtype) -> int:
    """MLA's latent cache: (kv_lora_rank + qk_rope_head_dim) x layers x dtype bytes per token."""
    elem = torch.empty((), dtype=dtype).element_size()
    return (fields["kv_lora_rank"] + fields["qk_rope_head_dim"]) * fields["num_hidden_layers"] * elem


def print_table(title: str, rows: list[tuple]) -> None:
    """rows: (metric, ours, theirs, ratio, target) with preformatted strings."""
    header = ("metric", "core_model", "transformers", "ratio", "target")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(5)]
    print(f"\n{title}")
    for r in [header, tuple("-" * w for w in widths), *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip())
    print()


def parity(sides, vocab: int, device: str, length: int = 64) -> float:
    """Max |logit difference| of the two sides on one random sequence (a wrong port shows up here)."""
    ids = torch.randint(0, vocab, (1, length), device=device)
    with torch.no_grad():
        a, b = (s.logits(ids).float() for s in sides)
    return float((a - b).abs().max())


def decode_rows(sides, fields, args, batches, rows: list, log, on_decoded=None) -> dict:
    """Prefill a context per batch size, then time decode; appends table rows and returns raw numbers.

    on_decoded(batch, sides, raw_entry) runs right after each batch size's decode (the models still hold
    that batch's last step, e.g. which experts the router picked)."""
    vocab, device = fields["vocab_size"], args.device
    raw = {}
    for b in batches:
        ids = torch.randint(0, vocab, (b, args.context), device=device)
        max_len = args.context + args.new_tokens * (args.chunks + 1) + 1
        log(f"batch {b}: filling a {args.context}-token context on both sides ...")
        with torch.no_grad():
            states = {}
            for side in sides:
                states[side.name] = side.prefill(ids, max_len, chunk=args.prefill_chunk)
                if hasattr(side, "prepare_decode"):
                    side.prepare_decode(states[side.name][0])
            kv = {s.name: s.kv_bytes_per_token(states[s.name][0]) for s in sides}
            log(f"batch {b}: timing decode ({args.chunks} x {args.new_tokens} steps per side) ...")
            step_s = time_decode(sides, states, args.new_tokens, args.chunks, device)
        tps = {k: b / v for k, v in step_s.items()}
        ratio = tps["core_model"] / tps["transformers"]
        target = ">= 10x" if b >= 8 and args.context >= 2048 and device == "cpu" else ""  # the CPU target
        rows.append((f"decode tok/s (batch {b}, ctx {args.context})", f"{tps['core_model']:,.1f}",
                     f"{tps['transformers']:,.1f}", f"{ratio:.2f}x", target))
        for extra in sides[2:]:
            rows.append((f"  {extra.name}", f"{tps[extra.name]:,.1f}", "",
                         f"{tps[extra.name] / tps['transformers']:.2f}x", "ablation"))
        raw[b] = {"tok_s": tps, "step_s": step_s, "kv_bytes_per_token": kv, "ratio": ratio}
        if on_decoded is not None:
            on_decoded(b, sides, raw[b])
        del states
    return raw


def run(args, model_fields: dict, dtype: torch.dtype, via_disk: bool, log=print, on_decoded=None,
        loop_ablation: bool = False) -> tuple[list, dict]:
    """Build both models, measure everything in args; returns (table rows, raw numbers).
    loop_ablation: also time core_model's decode without CUDA graphs (on CUDA) and with its per-expert loop."""
    device = args.device
    torch.manual_seed(args.seed)
    log(f"building models ({'save + load' if via_disk else 'in-memory weight copy'}) ...")
    ours_model, theirs_model = build_pair(model_fields, device, dtype, via_disk=via_disk, seed=args.seed)
    sides = [Ours(ours_model, device), Theirs(theirs_model, device)]
    diff = parity(sides, model_fields["vocab_size"], device)
    log(f"logits max |diff| = {diff:.2e}")
    rows, raw = [], {"logits_max_abs_diff": diff}
    with torch.no_grad():
        ids = torch.randint(0, model_fields["vocab_size"], (1, args.context), device=device)
        sides[0].prefill(ids[:, :32], 33), sides[1].prefill(ids[:, :32], 33)  # warm-up
        log(f"timing prefill (batch 1, {args.context} tokens, {args.repeats} each) ...")
        pre_s, _ = time_prefill(sides, ids, args.repeats, device)
    pre = {k: args.context / v for k, v in pre_s.items()}
    ablations = [Ours(ours_model, device, cuda_graph=False), Ours(ours_model, device, False, False)]
    decoders = sides + (ablations[int(not device.startswith("cuda")):] if loop_ablation else [])
    raw["decode"] = decode_rows(decoders, model_fields, args, args.batches, rows, log, on_decoded)
    first = raw["decode"][args.batches[0]]["kv_bytes_per_token"]
    want = expected_kv_bytes(model_fields, dtype)
    kv_ok = "exact" if first["core_model"] == want else f"MISMATCH (want {want})"
    rows.insert(0, ("KV cache bytes/token", f"{first['core_model']:,.0f}", f"{first['transformers']:,.0f}",
                    f"{first['transformers'] / first['core_model']:.2f}x smaller",
                    f"(r+dr)*L*{torch.empty((), dtype=dtype).element_size()} = {want:,}: {kv_ok}"))
    rows.insert(1, (f"prefill tok/s (batch 1, {args.context})", f"{pre['core_model']:,.0f}",
                    f"{pre['transformers']:,.0f}", f"{pre['core_model'] / pre['transformers']:.2f}x", ""))
    raw.update(prefill_tok_s=pre, kv_expected=want)
    if args.train_batch:
        ids = torch.randint(0, model_fields["vocab_size"], (args.train_batch, args.train_seq + 1), device=device)
        log(f"timing train step (batch {args.train_batch} x {args.train_seq}, {args.repeats} each) ...")
        step = time_train_step(sides, ids, args.repeats, device)
        rows.append((f"train step ms (batch {args.train_batch}x{args.train_seq})", f"{step['core_model'] * 1e3:,.1f}",
                     f"{step['transformers'] * 1e3:,.1f}", f"{step['transformers'] / step['core_model']:.2f}x",
                     ">= 2x"))
        raw["train_step_s"] = step
        if dtype == torch.float32:  # mixed precision, as `proofcode train --set autocast=bfloat16` runs
            mixed = time_train_step(sides, ids, args.repeats, device, autocast=True)
            rows.append(("  same, bf16 autocast (both sides)", f"{mixed['core_model'] * 1e3:,.1f}",
                         f"{mixed['transformers'] * 1e3:,.1f}", f"{mixed['transformers'] / mixed['core_model']:.2f}x",
                         ""))
            raw["train_step_autocast_s"] = mixed
        if device == "cpu":  # why the 2x target is out of reach at equal math: the matmuls alone
            flops, peak = step_flops(sides[0], ids), matmul_peak_flops(dtype)
            rows.append(("  matmul floor ms (FLOPs / peak)", f"{flops / peak * 1e3:,.1f}", f"{flops / peak * 1e3:,.1f}",
                         f"{flops / 1e9:,.1f} GFLOP", f"2x needs <= {step['transformers'] * 500:,.0f} ms; "
                         f"peak {peak / 1e9:,.0f} GFLOP/s"))
            raw.update(train_step_flops=flops, matmul_peak_flops=peak)
    return rows, raw


def add_common_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=2, help="torch intra-op threads (CPU)")
    p.add_argument("--context", type=int, help="context length before decoding")
    p.add_argument("--new-tokens", type=int, help="decode steps per timed chunk")
    p.add_argument("--chunks", type=int, help="timed decode chunks per side (alternating)")
    p.add_argument("--repeats", type=int, help="timed prefill / train repeats per side")
    p.add_argument("--prefill-chunk", type=int, default=512, help="core_model fills long contexts in chunks")
    p.add_argument("--seed", type=int, default=0)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_args(p)
    p.add_argument("--quick", action="store_true", help="~1 min smoke run (short context, fewer repeats)")
    p.add_argument("--preset", default="bench-small", help="model preset from core_model.presets")
    args = p.parse_args(argv)
    from core_model.presets import model_preset

    quick = dict(context=256, new_tokens=4, chunks=3, repeats=3, train_batch=2, train_seq=128, batches=[1, 8])
    full = dict(context=2048, new_tokens=8, chunks=5, repeats=3, train_batch=4, train_seq=256, batches=[1, 8])
    for k, v in (quick if args.quick else full).items():
        if getattr(args, k, None) is None:
            setattr(args, k, v)
    torch.set_num_threads(args.threads)
    fields = model_preset(args.preset)
    if args.device == "cpu":
        from core_model.precision import native_bf16_line

        print(native_bf16_line(), flush=True)
    t0 = time.perf_counter()
    rows, _ = run(args, fields, torch.float32, via_disk=True, log=lambda m: print(m, file=sys.stderr, flush=True))
    desc = (f"{args.preset}: hidden {fields['hidden_size']}, {fields['num_hidden_layers']} layers, "
            f"{fields['n_routed_experts']} experts (top-{fields['num_experts_per_tok']}), fp32, {args.device}, "
            f"{args.threads} threads; medians, sides alternating")
    print_table(desc, rows)
    print(f"total {time.perf_counter() - t0:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
