"""FP8 (e4m3) routed experts for decoding: weights quantized once per output row, activations per row on the fly,
both layers of every expert as one scaled grouped matmul (`torch._scaled_grouped_mm`, Hopper and later).

At batch 32 the routed experts' weights are most of the bytes a decode step reads (27.5 of 31.8 GB at
DeepSeek-V2-Lite size); e4m3 halves them. Off CUDA the same quantized values are multiplied after
dequantizing (`grouped_mm` emulates the kernel), so the numerics are testable anywhere.
"""
from __future__ import annotations

import torch

E4M3 = torch.float8_e4m3fn
E4M3_MAX = 448.0  # largest finite e4m3 value
_EPS = 1e-12


def quantize_rows(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """w [..., n, k] -> (e4m3 values [..., n, k], float32 scale [..., n]) with w ~ values * scale[..., None]."""
    scale = w.abs().amax(-1).float().clamp(min=_EPS) / E4M3_MAX
    q = (w.float() / scale[..., None]).clamp(-E4M3_MAX, E4M3_MAX).to(E4M3)
    return q, scale


def available(device: torch.device | str) -> bool:
    """Whether the FP8 kernel runs on `device` (off CUDA the emulation always does)."""
    device = torch.device(device)
    if device.type != "cuda":
        return True
    return hasattr(torch, "_scaled_grouped_mm") and torch.cuda.get_device_capability(device) >= (9, 0)


def grouped_mm(x: torch.Tensor, wq: torch.Tensor, w_scale: torch.Tensor, offs: torch.Tensor) -> torch.Tensor:
    """x [M, k] (rows sorted by expert, `offs` [E] int32 the end of each expert's rows) times each expert's
    quantized weight wq [E, n, k] (scale [E, n]) transposed -> [M, n] in x's dtype."""
    xq, x_scale = quantize_rows(x)
    if x.device.type == "cuda":
        return torch._scaled_grouped_mm(xq, wq.transpose(1, 2), x_scale, w_scale, offs=offs, out_dtype=x.dtype,
                                        use_fast_accum=True)
    xd = (xq.float() * x_scale[:, None]).to(x.dtype)
    wd = (wq.float() * w_scale[..., None]).to(x.dtype)
    return torch._grouped_mm(xd, wd.transpose(1, 2), offs=offs)


class ExpertWeights:
    """One MoE layer's routed experts in e4m3: w13 (gate rows, then up) [E, 2I, d] and w2 [E, d, I], with scales."""

    def __init__(self, w13: torch.Tensor, w2: torch.Tensor):
        self.w13, self.w13_scale = quantize_rows(w13)
        self.w2, self.w2_scale = quantize_rows(w2)

    def mlp(self, xs: torch.Tensor, offs: torch.Tensor, act) -> torch.Tensor:
        """act(gate) * up, then down, for rows xs [M, d] sorted by expert -> [M, d]."""
        gate, up = grouped_mm(xs, self.w13, self.w13_scale, offs).chunk(2, -1)
        return grouped_mm(act(gate) * up, self.w2, self.w2_scale, offs)
