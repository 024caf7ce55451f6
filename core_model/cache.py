"""Preallocated KV cache for generation, and the position/mask layout shared by cached and uncached forwards.

MLA layers store only the compressed latent c_kv [b, t, kv_lora_rank] and the shared rope key k_pe
[b, t, qk_rope_head_dim]; Llama-style layers store k, v [b, t, kv_heads, head_dim].
"""
from __future__ import annotations

import contextlib

import torch


class KVCache:
    """Per-layer cache of `max_len` slots for a batch of left-padded rows that advance together."""

    def __init__(self, batch_size: int, max_len: int, device: torch.device | str = "cpu"):
        self.batch_size, self.max_len, self.device = batch_size, max_len, torch.device(device)
        self.length = 0  # slots filled (including left padding)
        self.key_mask = torch.zeros(batch_size, max_len, dtype=torch.bool, device=self.device)
        self.seen = torch.zeros(batch_size, dtype=torch.long, device=self.device)  # real tokens per row
        self.layers: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        self.slot: torch.Tensor | None = None  # fixed-shape mode: the next slot, kept on the device
        self._host_step = False  # inside static_step: the forward leaves `length` and the room check to it

    def make_static(self) -> None:
        """Fixed-shape decode steps (what a CUDA graph needs): each step writes its token at the device-side
        `slot` and attends over all max_len slots, the unfilled ones masked out. Needs one prefill first."""
        if not self.layers:
            raise ValueError("make_static needs a filled cache: run the prompt through the model first")
        self.slot = torch.tensor([self.length], device=self.device)

    @contextlib.contextmanager
    def static_step(self):
        """One fixed-shape step whose host-side bookkeeping (room check, `length`) is done here, not by the
        forward: a compiled or captured step then reads no Python int that changes from step to step."""
        if self.slot is None:
            raise ValueError("static_step needs a fixed-shape cache: call make_static() first")
        self.require_room(1)
        self._host_step = True
        try:
            yield
        finally:
            self._host_step = False
        self.length += 1

    def snapshot(self) -> tuple:
        """The bookkeeping state (not the cached entries): a step run after it is undone by `restore`, since
        the next real step overwrites the slot that step wrote."""
        slot = None if self.slot is None else self.slot.clone()
        return slot, self.seen.clone(), self.key_mask.clone(), self.length

    def restore(self, saved: tuple) -> None:
        """Go back to a `snapshot`, in place (a captured CUDA graph keeps pointing at these tensors)."""
        slot, seen, key_mask, length = saved
        if slot is None:
            self.slot = None
        elif self.slot is None:
            self.slot = slot.clone()
        else:
            self.slot.copy_(slot)
        self.seen.copy_(seen)
        self.key_mask.copy_(key_mask)
        self.length = length

    def update(self, layer_idx: int, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Write the new entries a, b [batch, s, ...] after the filled slots; return all entries [batch, t, ...]."""
        s = a.shape[1]
        if self.slot is not None:
            if s != 1:
                raise ValueError(f"a fixed-shape cache takes one token per step, got {s}")
            ca, cb = self.layers[layer_idx]
            ca.index_copy_(1, self.slot, a)
            cb.index_copy_(1, self.slot, b)
            return ca, cb
        self.require_room(s)
        end = self.length + s
        if layer_idx not in self.layers:
            self.layers[layer_idx] = tuple(
                torch.zeros(self.batch_size, self.max_len, *z.shape[2:], dtype=z.dtype, device=z.device) for z in (a, b))
        ca, cb = self.layers[layer_idx]
        ca[:, self.length : end] = a
        cb[:, self.length : end] = b
        return ca[:, :end], cb[:, :end]

    def require_room(self, s: int) -> None:
        """Raise unless s more tokens fit."""
        if self.length + s > self.max_len:
            raise ValueError(f"KV cache holds {self.max_len} tokens but {self.length + s} are needed (it is full); "
                             "create the cache with a larger max_len")

    def advance(self, s: int, attention_mask: torch.Tensor | None = None) -> None:
        """Mark s new slots filled (called once per forward, after all layers)."""
        new = _as_mask(attention_mask, self.batch_size, s, self.device)
        if self.slot is not None:
            self.key_mask.index_copy_(1, self.slot, new)
            self.slot += s
        else:
            self.key_mask[:, self.length : self.length + s] = new
        self.seen += new.sum(1)
        if not self._host_step:  # static_step counts its own
            self.length += s

    def nbytes(self) -> int:
        """Bytes held by the cached tensors."""
        return sum(t.numel() * t.element_size() for pair in self.layers.values() for t in pair)


def _as_mask(attention_mask: torch.Tensor | None, b: int, s: int, device) -> torch.Tensor:
    if attention_mask is None:
        return torch.ones(b, s, dtype=torch.bool, device=device)
    if attention_mask.shape != (b, s):
        raise ValueError(f"attention_mask has shape {tuple(attention_mask.shape)}, expected {(b, s)}")
    return attention_mask.to(device=device, dtype=torch.bool)


def attention_layout(b: int, s: int, attention_mask: torch.Tensor | None, cache: KVCache | None, device):
    """Positions [b, s] and a bool mask [b, 1, s, t] (True = attend), or None meaning plain causal."""
    if cache is None and attention_mask is None:
        return torch.arange(s, device=device).expand(b, s), None
    new = _as_mask(attention_mask, b, s, device)
    past = 0 if cache is None else cache.length
    seen = torch.zeros(b, dtype=torch.long, device=device) if cache is None else cache.seen
    positions = seen[:, None] + (new.long().cumsum(1) - 1).clamp(min=0)
    if cache is not None and cache.slot is not None:  # fixed shape: attend over every slot, filled ones only
        if not cache._host_step:
            cache.require_room(s)
        return positions, cache.key_mask.index_fill(1, cache.slot, True)[:, None, None, :]
    keys = new if cache is None else torch.cat([cache.key_mask[:, :past], new], 1)  # [b, t]
    t = past + s
    causal = torch.ones(s, t, dtype=torch.bool, device=device).tril(past)
    mask = causal[None] & keys[:, None, :]
    # Every query sees itself, so a padding query never takes a softmax over nothing (its output is unused).
    mask[:, torch.arange(s, device=device), past + torch.arange(s, device=device)] = True
    return positions, mask[:, None]
