"""Optional Triton kernels for decode steps: absorbed-MLA attention over the latent cache, per-row expert GEMV.

Triton is not a dependency. `available(device)` says whether the kernels can run: on CUDA when Triton is
importable (CUDA builds of torch ship it), on CPU only under TRITON_INTERPRET=1 (how the tests check them).
Each kernel is a torch custom op, so torch.compile keeps it as one opaque call and a CUDA graph captures its
launches; the `*_reference` functions are the plain-torch definitions they are tested against.
"""
from __future__ import annotations

import functools
import importlib.util
import math
import os

import torch

BLOCK_T = 32  # cache rows per attention tile
MIN_SPLIT = 128  # cache rows per split at least: a split's partial result (h x r fp32) must stay small next to its reads


def available(device: torch.device | str) -> bool:
    """Whether the Triton kernels can run on `device` (CUDA with Triton, or CPU under TRITON_INTERPRET=1)."""
    device = torch.device(device)
    if importlib.util.find_spec("triton") is None:
        return False
    if device.type == "cuda":
        return True
    return device.type == "cpu" and os.environ.get("TRITON_INTERPRET") == "1"


def mla_decode_reference(q_lat, q_pe, c_kv, k_pe, key_mask, scale: float) -> torch.Tensor:
    """One query token per row: q_lat [b, h, r], q_pe [b, h, dr] over c_kv [b, t, r], k_pe [b, t, dr] where
    key_mask [b, t] (True = attend) -> latent output [b, h, r] (what MLA._absorbed computes for s == 1)."""
    scores = torch.einsum("bhc,btc->bht", q_lat, c_kv) + torch.einsum("bhr,btr->bht", q_pe, k_pe)
    scores = (scores * scale).masked_fill(~key_mask[:, None], float("-inf"))
    return torch.einsum("bht,btc->bhc", scores.softmax(-1, dtype=torch.float32).type_as(c_kv), c_kv)


def expert_gemv_reference(x: torch.Tensor, w: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """Row n of x [n, k] times expert ids[n]'s weight w[ids[n]] [o, k] -> [n, o]."""
    return torch.einsum("nk,nok->no", x, w.index_select(0, ids))


@torch.library.custom_op("core_model::mla_decode", mutates_args=())
def mla_decode(q_lat: torch.Tensor, q_pe: torch.Tensor, c_kv: torch.Tensor, k_pe: torch.Tensor,
               key_mask: torch.Tensor, scale: float) -> torch.Tensor:
    """`mla_decode_reference` as split-KV flash decoding: each program attends all heads over one slice of the
    cache (the latent is shared by every head, so it is read once), a second kernel merges the slices."""
    tr = _triton()
    b, h, r = q_lat.shape
    t, dr = c_kv.shape[1], q_pe.shape[-1]
    q_lat, q_pe = q_lat.contiguous(), q_pe.contiguous()
    c_kv, k_pe = (z if z.stride(-1) == 1 else z.contiguous() for z in (c_kv, k_pe))
    key_mask = key_mask.to(torch.uint8)
    n_split, chunk = _splits(b, t, q_lat.device)
    acc = torch.empty(b, n_split, h, r, dtype=torch.float32, device=q_lat.device)
    m = torch.empty(b, n_split, h, dtype=torch.float32, device=q_lat.device)
    l = torch.empty_like(m)
    blocks = dict(BLOCK_H=_pow2(h), BLOCK_R=_pow2(r), BLOCK_DR=_pow2(dr), BLOCK_T=BLOCK_T,
                  IEEE=q_lat.dtype == torch.float32 or os.environ.get("TRITON_INTERPRET") == "1")
    tr.mla_split[(b, n_split)](
        q_lat, q_pe, c_kv, k_pe, key_mask, acc, m, l, t, h, r, dr, chunk, scale, n_split,
        q_lat.stride(0), q_lat.stride(1), q_pe.stride(0), q_pe.stride(1), c_kv.stride(0), c_kv.stride(1),
        k_pe.stride(0), k_pe.stride(1), key_mask.stride(0), key_mask.stride(1), **blocks, num_warps=4)
    out = torch.empty(b, h, r, dtype=q_lat.dtype, device=q_lat.device)
    tr.mla_combine[(b, h)](acc, m, l, out, h, r, n_split, out.stride(0), out.stride(1),
                           BLOCK_S=_pow2(n_split, 2), BLOCK_R=min(_pow2(r), 128), num_warps=4)
    return out


@mla_decode.register_fake
def _(q_lat, q_pe, c_kv, k_pe, key_mask, scale):
    return q_lat.new_empty(q_lat.shape)


@torch.library.custom_op("core_model::expert_gemv", mutates_args=())
def expert_gemv(x: torch.Tensor, w: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """`expert_gemv_reference` reading only the experts named in ids (w: the packed [E, o, k] stack)."""
    tr = _triton()
    n, k = x.shape
    o = w.shape[1]
    x = x.contiguous()
    y = torch.empty(n, o, dtype=x.dtype, device=x.device)
    block_n = 32
    tr.expert_gemv[(n, triton_cdiv(o, block_n))](x, w, ids.contiguous(), y, o, k, x.stride(0), w.stride(0),
                                                 w.stride(1), y.stride(0), BLOCK_N=block_n, BLOCK_K=128, num_warps=4)
    return y


@expert_gemv.register_fake
def _(x, w, ids):
    return x.new_empty(x.shape[0], w.shape[1])


def triton_cdiv(a: int, b: int) -> int:
    return -(-a // b)


def _pow2(n: int, floor: int = 16) -> int:
    """Next power of two >= n, at least `floor` (tl.dot needs every dimension >= 16)."""
    return max(floor, 1 << max(0, math.ceil(math.log2(max(n, 1)))))


def _splits(b: int, t: int, device: torch.device) -> tuple[int, int]:
    """(number of cache slices, rows per slice): about two programs per SM over the batch, >= MIN_SPLIT rows each."""
    sms = torch.cuda.get_device_properties(device).multi_processor_count if device.type == "cuda" else 4
    per_row = max(1, 2 * sms // b)
    chunk = max(MIN_SPLIT, triton_cdiv(triton_cdiv(t, per_row), BLOCK_T) * BLOCK_T)
    return triton_cdiv(t, chunk), chunk


@functools.cache
def _triton():
    """Compile-on-first-use Triton kernels (built lazily: TRITON_INTERPRET is read when they are defined)."""
    import types

    import triton
    import triton.language as tl

    @triton.jit
    def mla_split(Q, QPE, CKV, KPE, MASK, ACC, M, L, T, H, R, DR, chunk, scale, n_split,
                  sq_b, sq_h, sqp_b, sqp_h, sc_b, sc_t, sp_b, sp_t, sm_b, sm_t,
                  BLOCK_H: tl.constexpr, BLOCK_R: tl.constexpr, BLOCK_DR: tl.constexpr, BLOCK_T: tl.constexpr,
                  IEEE: tl.constexpr):
        b = tl.program_id(0)
        split = tl.program_id(1)
        offs_h, offs_r, offs_d = tl.arange(0, BLOCK_H), tl.arange(0, BLOCK_R), tl.arange(0, BLOCK_DR)
        hm, rm, dm = offs_h < H, offs_r < R, offs_d < DR
        q = tl.load(Q + b * sq_b + offs_h[:, None] * sq_h + offs_r[None, :], mask=hm[:, None] & rm[None, :], other=0.0)
        qp = tl.load(QPE + b * sqp_b + offs_h[:, None] * sqp_h + offs_d[None, :], mask=hm[:, None] & dm[None, :],
                     other=0.0)
        m_i = tl.full([BLOCK_H], float("-inf"), tl.float32)
        l_i = tl.zeros([BLOCK_H], tl.float32)
        acc = tl.zeros([BLOCK_H, BLOCK_R], tl.float32)
        start = split * chunk
        end = tl.minimum(start + chunk, T)
        for t0 in range(start, end, BLOCK_T):
            offs_t = t0 + tl.arange(0, BLOCK_T)
            tm = offs_t < end
            keep = tl.load(MASK + b * sm_b + offs_t * sm_t, mask=tm, other=0) != 0
            kv = tl.load(CKV + b * sc_b + offs_t[:, None] * sc_t + offs_r[None, :], mask=tm[:, None] & rm[None, :],
                         other=0.0)
            kp = tl.load(KPE + b * sp_b + offs_t[:, None] * sp_t + offs_d[None, :], mask=tm[:, None] & dm[None, :],
                         other=0.0)
            if IEEE:  # fp32 inputs, or the interpreter (whose bf16 tl.dot returns garbage in triton 3.9)
                kv = kv.to(tl.float32)
                s = tl.dot(q.to(tl.float32), tl.trans(kv), input_precision="ieee") + \
                    tl.dot(qp.to(tl.float32), tl.trans(kp.to(tl.float32)), input_precision="ieee")
            else:
                s = tl.dot(q, tl.trans(kv)) + tl.dot(qp, tl.trans(kp))
            s = tl.where(keep[None, :], s * scale, float("-inf"))
            m_new = tl.maximum(m_i, tl.max(s, 1))
            m_safe = tl.where(m_new == float("-inf"), 0.0, m_new)
            alpha = tl.exp(m_i - m_safe)
            p = tl.exp(s - m_safe[:, None])
            l_i = l_i * alpha + tl.sum(p, 1)
            if IEEE:
                acc = acc * alpha[:, None] + tl.dot(p.to(q.dtype).to(tl.float32), kv, input_precision="ieee")
            else:
                acc = acc * alpha[:, None] + tl.dot(p.to(kv.dtype), kv)
            m_i = m_new
        row = (b * n_split + split) * H + offs_h
        tl.store(ACC + row[:, None] * R + offs_r[None, :], acc, mask=hm[:, None] & rm[None, :])
        tl.store(M + row, m_i, mask=hm)
        tl.store(L + row, l_i, mask=hm)

    @triton.jit
    def mla_combine(ACC, M, L, OUT, H, R, n_split, so_b, so_h, BLOCK_S: tl.constexpr, BLOCK_R: tl.constexpr):
        b = tl.program_id(0)
        h = tl.program_id(1)
        offs_s = tl.arange(0, BLOCK_S)
        sm = offs_s < n_split
        rows = (b * n_split + offs_s) * H + h
        m = tl.load(M + rows, mask=sm, other=float("-inf"))
        l = tl.load(L + rows, mask=sm, other=0.0)
        m_max = tl.max(m, 0)
        w = tl.where(m > float("-inf"), tl.exp(m - m_max), 0.0)
        denom = tl.sum(w * l, 0)
        for r0 in range(0, R, BLOCK_R):
            offs_r = r0 + tl.arange(0, BLOCK_R)
            rm = offs_r < R
            a = tl.load(ACC + rows[:, None] * R + offs_r[None, :], mask=sm[:, None] & rm[None, :], other=0.0)
            o = tl.sum(a * w[:, None], 0) / denom
            tl.store(OUT + b * so_b + h * so_h + offs_r, o.to(OUT.dtype.element_ty), mask=rm)

    @triton.jit
    def expert_gemv(X, W, IDS, Y, N, K, sx, sw_e, sw_n, sy, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):
        row = tl.program_id(0)
        offs_n = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
        nm = offs_n < N
        e = tl.load(IDS + row).to(tl.int64)
        acc = tl.zeros([BLOCK_N], tl.float32)
        for k0 in range(0, K, BLOCK_K):
            offs_k = k0 + tl.arange(0, BLOCK_K)
            km = offs_k < K
            x = tl.load(X + row * sx + offs_k, mask=km, other=0.0).to(tl.float32)
            w = tl.load(W + e * sw_e + offs_n[:, None] * sw_n + offs_k[None, :], mask=nm[:, None] & km[None, :],
                        other=0.0).to(tl.float32)
            acc += tl.sum(w * x[None, :], 1)
        tl.store(Y + row * sy + offs_n, acc.to(Y.dtype.element_ty), mask=nm)

    return types.SimpleNamespace(mla_split=mla_split, mla_combine=mla_combine, expert_gemv=expert_gemv)
