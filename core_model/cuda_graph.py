"""Decode steps replayed as one CUDA graph, optionally compiled and with Triton kernels.

At batch 1 a decode step is ~1,500 small kernels; launched one by one from Python the GPU mostly waits
for the CPU (measured on an H200: 64 ms per step at DeepSeek-V2-Lite size, 1.6% of the HBM roofline).
Captured once and replayed, a step costs one launch. The cache switches to fixed shapes for this
(`KVCache.make_static`): writes go to a device-side slot and attention covers all max_len slots.

`DecodeKernels` picks what the captured step runs: torch.compile of the norm/projection/rotary and the
router/expert regions of every layer (fewer, fused kernels; inductor without CUDA graphs of its own, since
the step is captured here), the Triton absorbed-MLA attention, the Triton expert GEMV at small batch.
"""
from __future__ import annotations

import functools
import logging
from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, field_validator

from core_model.cache import KVCache

log = logging.getLogger(__name__)


class DecodeKernels(BaseModel):
    """What one decode step runs. The default: the Triton attention and expert GEMV on CUDA (falling back to the
    eager modules if they fail to build), no torch.compile (each new batch size or cache length recompiles)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    compile: Literal["off", "regional", "full"] = "off"  # regional: each layer's regions between cache accesses
    compile_mode: str | None = None  # torch.compile mode; None is inductor's default
    compile_backend: str = "inductor"
    # "auto": the Triton kernel on CUDA when Triton is importable, else the torch one (on CPU always torch:
    # the Triton interpreter is for tests)
    attention: Literal["auto", "torch", "triton"] = "auto"
    # "fp8": the routed experts' weights in e4m3 (per-row scales), grouped scaled matmuls (Hopper or later)
    experts: Literal["auto", "grouped", "gemv", "fp8"] = "auto"

    @field_validator("compile_mode")
    @classmethod
    def _no_own_graphs(cls, mode: str | None) -> str | None:
        if mode in ("reduce-overhead", "max-autotune"):
            raise ValueError(f"compile_mode {mode!r} captures CUDA graphs of its own; the decoder captures the "
                             "step itself: use None, 'default' or 'max-autotune-no-cudagraphs'")
        return mode

    def resolved(self, device: torch.device | str) -> "DecodeKernels":
        """These kernels with "auto" replaced by what runs on `device`."""
        from core_model import kernels

        fast = torch.device(device).type == "cuda" and kernels.available(device)
        return self.model_copy(update={
            "attention": ("triton" if fast else "torch") if self.attention == "auto" else self.attention,
            "experts": ("gemv" if fast else "grouped") if self.experts == "auto" else self.experts})

    def label(self) -> str:
        parts = [] if self.compile == "off" else [f"compile {self.compile}" + (f" {self.compile_mode}" if self.compile_mode else "")]
        parts += ["triton attention"] * (self.attention == "triton") + ["expert GEMV"] * (self.experts == "gemv")
        parts += ["fp8 experts"] * (self.experts == "fp8")
        parts += [f"{what} auto" for what, v in (("attention", self.attention), ("experts", self.experts)) if v == "auto"]
        return " + ".join(parts) or "eager kernels"


EAGER = DecodeKernels(attention="torch", experts="grouped")  # the model's own modules, what every fallback runs


class DecodeStep:
    """`step(tokens [b, 1]) -> logits [b, V]` on a fixed-shape cache with the chosen kernels: what
    `GraphedDecoder` captures (called directly it runs eagerly, e.g. on CPU in the tests)."""

    def __init__(self, model: torch.nn.Module, cache: KVCache, kernels: DecodeKernels | None = None):
        from core_model import kernels as triton_kernels

        self.model, self.cache = model, cache
        self.kernels = (kernels or DecodeKernels()).resolved(cache.device)
        k = self.kernels
        if (k.attention == "triton" or k.experts == "gemv") and not triton_kernels.available(cache.device):
            raise ValueError(f"the Triton kernels cannot run on {cache.device} (Triton missing, or a CPU without "
                             "TRITON_INTERPRET=1); use DecodeKernels(attention='torch', experts='grouped')")
        self._fp8 = self._quantized_experts() if k.experts == "fp8" else None
        if cache.slot is None:
            cache.make_static()
        opts = dict(backend=k.compile_backend, mode=k.compile_mode, dynamic=False)
        self._regions = _compiled_regions(**opts) if k.compile == "regional" else None
        self._run = torch.compile(self._forward, **opts) if k.compile == "full" else self._forward

    def _quantized_experts(self) -> dict:
        """Each MoE layer's routed experts in e4m3, quantized now from the current weights (a step built after
        a training update sees the update) and kept as long as this step (a captured graph reads them)."""
        from core_model import fp8
        from core_model.model import MoE

        if not fp8.available(self.cache.device):
            raise ValueError(f"FP8 experts need torch._scaled_grouped_mm on a Hopper or later GPU, not "
                             f"{self.cache.device}; use DecodeKernels(experts='grouped')")
        moes = [m for m in self.model.modules() if isinstance(m, MoE)]
        if not all(m.packed for m in moes):
            raise ValueError("FP8 experts need packed experts (load_pretrained packs them)")
        return {m: fp8.ExpertWeights(m.w13, m.w2) for m in moes}

    def _forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.model(tokens, cache=self.cache)[:, -1]

    def __call__(self, tokens: torch.Tensor) -> torch.Tensor:
        with _applied(self.model, self.kernels, self._regions, self._fp8), self.cache.static_step():
            return self._run(tokens)


@functools.cache
def _compiled_regions(backend: str, mode: str | None, dynamic: bool) -> dict:
    """One compiled function per region, shared by every layer (the layers are its arguments, not constants:
    a model compiles each region once per shape, not once per layer)."""
    from core_model.model import MLA, Block, RMSNorm

    opts = dict(backend=backend, mode=mode, dynamic=dynamic)
    return {"norm": torch.compile(RMSNorm.forward, **opts), "project": torch.compile(MLA.project, **opts),
            "ffn": torch.compile(Block.ffn, **opts)}


class _applied:
    """Set the kernel switches on the model's modules (and the compiled regions as instance attributes that
    shadow the methods) for one step; restore everything after."""

    def __init__(self, model: torch.nn.Module, kernels: DecodeKernels, regions: dict | None, fp8: dict | None = None):
        self.model, self.kernels, self.regions, self.fp8 = model, kernels, regions, fp8 or {}

    def __enter__(self) -> None:
        from core_model.model import MLA, Block, MoE

        self.undo = []
        for m in self.model.modules():
            if isinstance(m, MLA):
                self._set(m, "decode_kernel", self.kernels.attention)
            elif isinstance(m, MoE):
                self._set(m, "expert_kernel", self.kernels.experts)
                if m in self.fp8:
                    self._set(m, "fp8_experts", self.fp8[m])
            if self.regions is not None and isinstance(m, Block):
                self._set(m, "ffn", functools.partial(self.regions["ffn"], m))
                self._set(m.input_layernorm, "forward", functools.partial(self.regions["norm"], m.input_layernorm))
                if isinstance(m.self_attn, MLA):
                    self._set(m.self_attn, "project", functools.partial(self.regions["project"], m.self_attn))

    def _set(self, obj, name: str, value) -> None:
        had = name in vars(obj)
        self.undo.append((obj, name, had, vars(obj).get(name)))
        vars(obj)[name] = value

    def __exit__(self, *exc) -> None:
        for obj, name, had, old in reversed(self.undo):
            if had:
                vars(obj)[name] = old
            else:
                del vars(obj)[name]


class GraphedDecoder:
    """`step(tokens [b, 1]) -> logits [b, V]` for one cache, replaying a captured graph of the model's step.

    The returned logits live in the graph's output buffer: read them before the next step.
    """

    def __init__(self, model: torch.nn.Module, cache: KVCache, warmup: int = 2, kernels: DecodeKernels | None = None):
        if cache.device.type != "cuda":
            raise ValueError(f"CUDA graphs need a CUDA cache, this one is on {cache.device}")
        self.model, self.cache = model, cache
        self._step = DecodeStep(model, cache, kernels)  # makes the cache static
        self.tokens = torch.zeros(cache.batch_size, 1, dtype=torch.long, device=cache.device)
        saved = cache.snapshot()
        try:
            self._capture(warmup, saved)
        finally:
            cache.restore(saved)  # warm-up steps ran for real; the capture ran only the Python side

    def _capture(self, warmup: int, saved: tuple) -> None:
        side = torch.cuda.Stream(self.cache.device)
        side.wait_stream(torch.cuda.current_stream(self.cache.device))
        with torch.cuda.stream(side), torch.no_grad():  # warm-up: compilation, allocator, cuBLAS handles
            for _ in range(warmup):
                self._step(self.tokens)
                self.cache.restore(saved)
        torch.cuda.current_stream(self.cache.device).wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph), torch.no_grad():
            self.logits = self._step(self.tokens)

    def step(self, tokens: torch.Tensor) -> torch.Tensor:
        self.cache.require_room(1)  # the replayed graph writes at its slot without checking
        self.tokens.copy_(tokens.view(self.tokens.shape))
        self.graph.replay()
        self.cache.length += 1
        return self.logits


def graphed_decoder(model: torch.nn.Module, cache: KVCache, kernels: DecodeKernels | None = None) -> GraphedDecoder | None:
    """A `GraphedDecoder` for a filled CUDA cache, or None (with a warning) where capture fails: the caller
    then decodes eagerly on the same cache, which is left exactly as it was. Kernels that fail to compile or
    capture fall back to the eager kernels first."""
    from core_model.model import MoE

    dtype = model.lm_head.weight.dtype
    if any(isinstance(m, MoE) and not m.grouped_available(dtype, cache.device) for m in model.modules()):
        log.info("decoding without CUDA graphs: the experts' per-expert loop syncs with the host "
                 "(graphs need packed experts in bf16: load_pretrained(..., dtype=torch.bfloat16))")
        return None
    chosen = (kernels or DecodeKernels()).resolved(cache.device)
    tries = [chosen] + [EAGER] * (chosen != EAGER)
    for k in tries:
        saved = cache.snapshot()
        try:
            return GraphedDecoder(model, cache, kernels=k)
        except Exception as e:  # capture failures surface as many error types; eager decode is always correct
            cache.restore(saved)
            cache.slot = None
            log.warning("CUDA graph capture with %s failed (%s: %s); %s", k.label(), type(e).__name__,
                        str(e)[:300], "decoding without graphs" if k == EAGER else "trying eager kernels")
    return None
