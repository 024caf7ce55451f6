"""Training through the packed experts: all routed experts of a layer in two `torch._grouped_mm` calls,
with gradients reaching each expert's own parameters.

Packed experts keep one stacked tensor per projection (`MoE.w13` [E, 2I, d], `MoE.w2` [E, d, I]) whose
slices are the per-expert parameters (the Hugging Face names). Autograd sees the parameters, not the stack,
so `stacked` hands the stack to the matmuls as a differentiable value (no copy) and routes its gradient back
to the parameters as slices.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

# Rows of each expert's group rounded up to this: grouped_mm's weight gradient reduces over the rows, and
# its groups must start 16-byte aligned (8 bf16 rows; torchtitan pads the same way).
GROUP_ALIGN = 8


class _Stacked(torch.autograd.Function):
    @staticmethod
    def forward(ctx, stack: torch.Tensor, slices: list, *params: torch.Tensor) -> torch.Tensor:
        ctx.slices = slices
        return stack.view_as(stack)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return (None, None, *(grad[s] for s in ctx.slices))


def stacked(stack: torch.Tensor, parts: list[tuple[torch.Tensor, tuple]]) -> torch.Tensor:
    """`stack` as a value whose gradient goes to `parts`: (parameter, its index into the stack) pairs."""
    return _Stacked.apply(stack, [s for _, s in parts], *(p for p, _ in parts))


def padded_groups(sorted_ids: torch.Tensor, n_experts: int, align: int = GROUP_ALIGN):
    """Rows sorted by expert -> (their rows in a layout where each expert's group starts at a multiple of
    `align`, group end offsets int32 [E], rows of that layout). All on the device: no host sync, and the row
    count is a fixed bound (n + E * (align - 1)), the last group taking the slack."""
    n = sorted_ids.numel()
    experts = torch.arange(n_experts, device=sorted_ids.device, dtype=sorted_ids.dtype)
    ends = torch.searchsorted(sorted_ids, experts, right=True)
    counts = torch.diff(ends, prepend=ends.new_zeros(1))
    padded = (counts + align - 1) // align * align
    padded_ends = padded.cumsum(0)
    rank = torch.arange(n, device=sorted_ids.device) - (ends - counts).index_select(0, sorted_ids)
    dest = (padded_ends - padded).index_select(0, sorted_ids) + rank
    size = n + n_experts * (align - 1)
    offs = torch.cat([padded_ends[:-1], padded_ends.new_full((1,), size)]).to(torch.int32)
    return dest, offs, size


def grouped_mlp_train(xs: torch.Tensor, sorted_ids: torch.Tensor, moe) -> torch.Tensor:
    """SwiGLU of every expert on its rows of xs [n, d] (sorted by expert), differentiable in xs and in the
    experts' parameters; the padding rows are zeros and never read back."""
    inter = moe.w13.shape[1] // 2
    w13 = stacked(moe.w13, [(p, (e, slice(a, b))) for e, m in enumerate(moe.experts)
                            for p, (a, b) in ((m.gate_proj.weight, (0, inter)), (m.up_proj.weight, (inter, 2 * inter)))])
    w2 = stacked(moe.w2, [(m.down_proj.weight, (e,)) for e, m in enumerate(moe.experts)])
    dest, offs, size = padded_groups(sorted_ids, moe.n_experts)
    xp = xs.new_zeros(size, xs.shape[1]).index_copy(0, dest, xs)
    gate, up = torch._grouped_mm(xp, w13.transpose(1, 2), offs=offs).chunk(2, -1)
    return torch._grouped_mm(F.silu(gate) * up, w2.transpose(1, 2), offs=offs).index_select(0, dest)
