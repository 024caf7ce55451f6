"""Pieces of bench_model_gpu.py: model shapes, decode variants, byte counts and the greedy comparison."""
from __future__ import annotations

import functools
import importlib.util
from dataclasses import dataclass

import torch

import bench_model


@dataclass
class GreedyRun:
    tokens: list  # [b, 1] per step
    logits: list  # fp32 [b, V]: logits[i] chose tokens[i] (logits[0] is the prefill's)
    routes: list  # per step: expert ids [layers, b, k] (sorted) the routers chose


class RouteLog:
    """Forward hooks on the model's routers that keep each one's last expert ids. In a captured CUDA graph
    the kept tensors are the graph's own buffers, so after a replay they hold that replay's choices."""

    def __init__(self, model):
        from core_model.model import Gate

        self.last: dict = {}
        gates = [m for m in model.modules() if isinstance(m, Gate)]
        self.handles = [m.register_forward_hook(functools.partial(self._hook, i)) for i, m in enumerate(gates)]

    def _hook(self, layer: int, module, args, out) -> None:
        self.last[layer] = out[1]

    def read(self) -> torch.Tensor | None:
        if not self.last:
            return None
        return torch.stack([idx.sort(-1).values for idx in self.last.values()]).clone()

    def close(self) -> None:
        for h in self.handles:
            h.remove()


def compare_greedy(ref: GreedyRun, run: GreedyRun) -> str:
    """The variant was fed the reference's tokens (teacher forcing), so every step has the same history and
    the differences are the kernels' own. Reports argmax flips (near-tie when the reference's top-2 gap there
    is <= 2x the row's logit error), routing flips (a router picking another expert set for a (step, layer,
    row): a near-tie of router scores, which changes that token's output by a whole expert) and the logit
    error of rows whose routing matched against all rows."""
    steps = len(run.tokens)
    flips, near, route_flips, route_total = 0, 0, 0, 0
    err_same, err_all, sq_err, sq_ref = 0.0, 0.0, 0.0, 0.0
    for i in range(1, steps + 1):
        a, b = ref.logits[i], run.logits[i]
        err = (b - a).abs().amax(-1)  # [rows]
        sq_err, sq_ref = sq_err + float((b - a).square().sum()), sq_ref + float(a.square().sum())
        same_route = torch.ones_like(err, dtype=torch.bool)
        if ref.routes[i] is not None and run.routes[i] is not None:
            differs = (ref.routes[i] != run.routes[i]).any(-1)  # [layers, rows]
            route_flips += int(differs.sum())
            route_total += differs.numel()
            same_route = ~differs.any(0)
        err_all = max(err_all, float(err.max()))
        if bool(same_route.any()):
            err_same = max(err_same, float(err[same_route].max()))
        for row in (a.argmax(-1) != b.argmax(-1)).nonzero()[:, 0].tolist():
            top2 = a[row].topk(2).values
            flips += 1
            near += float(top2[0] - top2[1]) <= 2 * float(err[row])
    tokens = steps * ref.logits[0].shape[0]
    routing = f"routing flips {route_flips}/{route_total}" if route_total else "routing not seen"
    errors = (f"max|dlogit| {err_same:.3f} same routing, {err_all:.3f} all rows; "
              f"logits rel. RMS error {(sq_err / max(sq_ref, 1e-30)) ** 0.5:.2%}")
    if flips == 0:
        return f"identical ({tokens} tokens); {routing}; {errors}"
    kind = "near-tie" if near == flips else f"DIFFERENT ({flips - near} not near-tie)"
    return f"{kind}: {flips}/{tokens} argmax flips; {routing}; {errors}"


def decode_variants(args, model):
    """variants(batch) -> [(label, DecodeKernels)] in the order measured (cheap levers first)."""
    from core_model import fp8, kernels
    from core_model.cuda_graph import DecodeKernels as K
    from core_model.model import GEMV_MAX_ROWS

    triton = kernels.available(args.device)
    graph = "graph" if args.device.startswith("cuda") else "static step"
    k = model.config.num_experts_per_tok or 1
    mode = args.compile_mode

    def variants(b: int) -> list:
        gemv = b * k <= GEMV_MAX_ROWS
        out = [(f"{graph}, eager kernels", K(attention="torch", experts="grouped"))]
        if triton:
            out.append((f"{graph} + triton attention", K(attention="triton", experts="grouped")))
            if gemv:
                out.append((f"{graph} + expert GEMV", K(attention="torch", experts="gemv")))
                out.append((f"{graph} + triton attention + expert GEMV (generate's default)", K()))
        if args.variants != "basic":
            out.append((f"{graph} + compile", K(compile="regional", compile_mode=mode, attention="torch",
                                                experts="grouped")))
            if triton:
                out.append((f"{graph} + compile + triton attention",
                            K(compile="regional", compile_mode=mode, attention="triton", experts="grouped")))
                if gemv:
                    out.append((f"{graph} + compile + triton attention + expert GEMV",
                                K(compile="regional", compile_mode=mode, attention="triton", experts="gemv")))
            if fp8.available(args.device):  # e4m3 routed experts (emulated on CPU): half their bytes
                out.append((f"{graph} + triton attention + fp8 experts" if triton else f"{graph} + fp8 experts",
                            K(attention="triton" if triton else "torch", experts="fp8")))
                out.append((f"{graph} + compile" + (" + triton attention" if triton else "") + " + fp8 experts",
                            K(compile="regional", compile_mode=mode, attention="triton" if triton else "torch",
                              experts="fp8")))
            if args.full_compile:
                out.append((f"{graph} + full compile" + (" + triton attention" if triton else ""),
                            K(compile="full", compile_mode=mode, attention="triton" if triton else "torch",
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


def bytes_per_decode_step(model, fields: dict, batch: int, context: int, dtype: torch.dtype,
                          route_ids: torch.Tensor) -> dict:
    """HBM bytes one decode step must read, from the routers' decision in one step (route_ids [layers, b, k])."""
    elem = torch.empty((), dtype=dtype).element_size()
    all_params = sum(p.numel() * p.element_size() for p in model.parameters())
    experts_total, layers = routed_expert_bytes(model)
    embed = model.model.embed_tokens.weight
    dense = all_params - experts_total - embed.numel() * embed.element_size() + batch * embed.shape[1] * elem
    hit = sum(int(ids.unique().numel()) * per for (_, per), ids in zip(layers, route_ids))
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
        from core_model import fp8

        lines.append("fp8 experts: " + ("measured (torch._scaled_grouped_mm, e4m3, per-row scales)" if fp8.available(device)
                                        else "not measured (needs torch._scaled_grouped_mm on capability >= 9.0)"))
    return lines
