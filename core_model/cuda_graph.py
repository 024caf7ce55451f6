"""Decode steps replayed as one CUDA graph.

At batch 1 a decode step is ~1,500 small kernels; launched one by one from Python the GPU mostly waits
for the CPU (measured on an H200: 64 ms per step at DeepSeek-V2-Lite size, 1.6% of the HBM roofline).
Captured once and replayed, a step costs one launch. The cache switches to fixed shapes for this
(`KVCache.make_static`): writes go to a device-side slot and attention covers all max_len slots.
"""
from __future__ import annotations

import logging

import torch

from core_model.cache import KVCache

log = logging.getLogger(__name__)


class GraphedDecoder:
    """`step(tokens [b, 1]) -> logits [b, V]` for one cache, replaying a captured graph of the model's step.

    The returned logits live in the graph's output buffer: read them before the next step.
    """

    def __init__(self, model: torch.nn.Module, cache: KVCache, warmup: int = 2):
        if cache.device.type != "cuda":
            raise ValueError(f"CUDA graphs need a CUDA cache, this one is on {cache.device}")
        self.model, self.cache = model, cache
        cache.make_static()
        self.tokens = torch.zeros(cache.batch_size, 1, dtype=torch.long, device=cache.device)
        saved = self._save()
        try:
            self._capture(warmup, saved)
        finally:
            self._restore(saved)  # warm-up steps ran for real; the capture ran only the Python side

    def _capture(self, warmup: int, saved: tuple) -> None:
        side = torch.cuda.Stream(self.cache.device)
        side.wait_stream(torch.cuda.current_stream(self.cache.device))
        with torch.cuda.stream(side), torch.no_grad():  # warm-up: allocator, cuBLAS handles, lazy inits
            for _ in range(warmup):
                self.model(self.tokens, cache=self.cache)
                self._restore(saved)
        torch.cuda.current_stream(self.cache.device).wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph), torch.no_grad():
            self.logits = self.model(self.tokens, cache=self.cache)[:, -1]

    def _save(self) -> tuple:
        c = self.cache
        return c.slot.clone(), c.seen.clone(), c.key_mask.clone(), c.length

    def _restore(self, saved: tuple) -> None:
        slot, seen, key_mask, length = saved
        self.cache.slot.copy_(slot)
        self.cache.seen.copy_(seen)
        self.cache.key_mask.copy_(key_mask)
        self.cache.length = length

    def step(self, tokens: torch.Tensor) -> torch.Tensor:
        self.cache.require_room(1)  # the replayed graph writes at its slot without checking
        self.tokens.copy_(tokens.view(self.tokens.shape))
        self.graph.replay()
        self.cache.length += 1
        return self.logits


def graphed_decoder(model: torch.nn.Module, cache: KVCache) -> GraphedDecoder | None:
    """A `GraphedDecoder` for a filled CUDA cache, or None (with a warning) where capture fails: the caller
    then decodes eagerly on the same cache, which is left exactly as it was."""
    from core_model.model import MoE

    dtype = model.lm_head.weight.dtype
    if any(isinstance(m, MoE) and not m.grouped_available(dtype, cache.device) for m in model.modules()):
        log.info("decoding without CUDA graphs: the experts' per-expert loop syncs with the host "
                 "(graphs need packed experts in bf16: load_pretrained(..., dtype=torch.bfloat16))")
        return None
    try:
        return GraphedDecoder(model, cache)
    except Exception as e:  # capture failures surface as many error types; eager decode is always correct
        cache.slot = None
        log.warning("CUDA graph capture failed (%s: %s); decoding without graphs", type(e).__name__, e)
        return None
