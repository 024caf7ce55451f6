"""DeepSeek-V2/V3 transformer (MLA + DeepSeekMoE) and dense Llama-architecture models in one code path.

Module and parameter names follow the Hugging Face checkpoints (`model.layers.{i}.self_attn.kv_b_proj.weight`,
`model.layers.{i}.mlp.experts.{j}.gate_proj.weight`, ...) so a state dict maps onto the files one to one.
Shapes in comments: b batch, s new tokens, t cached+new tokens, h heads, r kv_lora_rank.
"""
from __future__ import annotations

import json
import logging
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

log = logging.getLogger(__name__)

ARCHITECTURES = {
    "deepseek_v2": "DeepseekV2ForCausalLM",
    "deepseek_v3": "DeepseekV3ForCausalLM",
    "llama": "LlamaForCausalLM",
}
_TOPK_METHODS = ("greedy", "group_limited_greedy", "noaux_tc")
_ROPE_TYPES = ("default", "linear", "yarn")
# Keys outside the dataclass that would change the math: accepted only at these neutral values.
_UNSUPPORTED_IF_SET = {"mlp_bias": False, "pretraining_tp": 1, "partial_rotary_factor": 1.0}
# Above this many (token, expert) rows the grouped matmul beats one GEMV per row (each row rereads its expert).
GEMV_MAX_ROWS = 16


@dataclass
class ModelConfig:
    """Architecture hyper-parameters with Hugging Face `config.json` field names (defaults: a tiny V2 model)."""

    model_type: str = "deepseek_v2"
    vocab_size: int = 256
    hidden_size: int = 64
    intermediate_size: int = 128
    moe_intermediate_size: int = 32
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    num_key_value_heads: int | None = None  # llama only; MLA ignores it
    head_dim: int | None = None  # llama only
    q_lora_rank: int | None = None
    kv_lora_rank: int = 32
    qk_nope_head_dim: int = 16
    qk_rope_head_dim: int = 8
    v_head_dim: int = 16
    n_routed_experts: int | None = 8
    n_shared_experts: int | None = 1
    num_experts_per_tok: int | None = 2
    first_k_dense_replace: int = 1
    moe_layer_freq: int = 1
    routed_scaling_factor: float = 1.0
    topk_method: str | None = None  # None: "greedy" (v2) / "noaux_tc" (v3)
    scoring_func: str | None = None  # None: "softmax" (v2) / "sigmoid" (v3)
    n_group: int | None = None
    topk_group: int | None = None
    norm_topk_prob: bool = False
    aux_loss_alpha: float = 0.001
    seq_aux: bool = True
    rope_theta: float = 10000.0
    rope_scaling: dict | None = None
    rope_interleave: bool = True
    max_position_embeddings: int = 4096
    rms_norm_eps: float = 1e-6
    tie_word_embeddings: bool = False
    attention_bias: bool = False
    hidden_act: str = "silu"
    num_nextn_predict_layers: int = 0
    bos_token_id: int | None = None
    eos_token_id: int | list | None = None
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.model_type not in ARCHITECTURES:
            raise ValueError(f"model_type {self.model_type!r} is not supported; use one of {sorted(ARCHITECTURES)}")
        if self.model_type == "llama":
            self.n_routed_experts = None
            self.rope_interleave = False
        v3 = self.model_type == "deepseek_v3"
        self.topk_method = self.topk_method or ("noaux_tc" if v3 else "greedy")
        self.scoring_func = self.scoring_func or ("sigmoid" if v3 else "softmax")
        self.num_key_value_heads = self.num_key_value_heads or self.num_attention_heads
        if self.rope_scaling is not None:
            self.rope_scaling = dict(self.rope_scaling)
            kind = self.rope_scaling.get("rope_type", self.rope_scaling.get("type", "default"))
            self.rope_scaling = None if kind == "default" else {**self.rope_scaling, "type": kind, "rope_type": kind}
        self._validate()

    def _validate(self) -> None:
        def need(ok: bool, msg: str) -> None:
            if not ok:
                raise ValueError(f"invalid model config: {msg}")

        for name in ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads"):
            need(isinstance(getattr(self, name), int) and getattr(self, name) > 0, f"{name} must be a positive int")
        need(self.hidden_act == "silu", f"hidden_act {self.hidden_act!r} is not supported (only 'silu')")
        for key, ok_value in _UNSUPPORTED_IF_SET.items():
            need(self.extra.get(key, ok_value) in (ok_value, None), f"{key}={self.extra.get(key)!r} is not supported")
        if self.rope_scaling is not None:
            kind = self.rope_scaling["type"]
            need(kind in _ROPE_TYPES, f"rope_scaling type {kind!r} is not supported; use one of {_ROPE_TYPES}")
            need(float(self.rope_scaling.get("factor") or 0) > 0, "rope_scaling needs a positive 'factor'")
        if self.model_type == "llama":
            need(self.num_attention_heads % self.num_key_value_heads == 0,
                 f"num_attention_heads {self.num_attention_heads} not divisible by num_key_value_heads "
                 f"{self.num_key_value_heads}")
            need(self.head_dim is not None or self.hidden_size % self.num_attention_heads == 0,
                 "hidden_size must be divisible by num_attention_heads when head_dim is not set")
            return
        need(self.qk_rope_head_dim % 2 == 0, f"qk_rope_head_dim {self.qk_rope_head_dim} must be even")
        need(self.q_lora_rank is None or self.q_lora_rank > 0, "q_lora_rank must be null or positive")
        if not self.n_routed_experts:
            return
        need(self.topk_method in _TOPK_METHODS, f"topk_method {self.topk_method!r} is not one of {_TOPK_METHODS}")
        need(self.scoring_func in ("softmax", "sigmoid"), f"scoring_func {self.scoring_func!r} is not supported")
        need(self.topk_method != "noaux_tc" or self.scoring_func == "sigmoid", "noaux_tc needs scoring_func sigmoid")
        k = self.num_experts_per_tok or 0
        need(0 < k <= self.n_routed_experts, f"num_experts_per_tok {k} must be in 1..{self.n_routed_experts}")
        need(self.moe_layer_freq >= 1, "moe_layer_freq must be >= 1")
        if self.topk_method != "greedy":
            g, tg = self.n_group or 0, self.topk_group or 0
            need(g > 0 and self.n_routed_experts % g == 0,
                 f"n_group {self.n_group} must divide n_routed_experts {self.n_routed_experts}")
            need(0 < tg <= g, f"topk_group {self.topk_group} must be in 1..n_group={g}")
            need(self.topk_method != "noaux_tc" or self.n_routed_experts // g >= 2,
                 "noaux_tc scores a group by its top-2 experts: each of the n_group groups needs >= 2 experts")
            need(k <= tg * self.n_routed_experts // g, f"num_experts_per_tok {k} exceeds experts in topk_group groups")

    def is_moe_layer(self, i: int) -> bool:
        """Whether decoder layer i uses DeepSeekMoE (else a dense MLP)."""
        return bool(self.n_routed_experts) and i >= self.first_k_dense_replace and i % self.moe_layer_freq == 0

    @property
    def attn_head_dim(self) -> int:
        return self.head_dim or self.hidden_size // self.num_attention_heads

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ModelConfig":
        """Build from a HF config dict (v2/v3/llama); unknown architectures or values raise ValueError."""
        d = dict(d)
        archs = d.pop("architectures", None) or []
        known = set(ARCHITECTURES.values())
        bad = [a for a in archs if a not in known]
        if bad:
            raise ValueError(f"unknown architecture {bad[0]!r}; supported: {sorted(known)}")
        by_arch = {v: k for k, v in ARCHITECTURES.items()}
        if "model_type" not in d:
            if not archs:
                raise ValueError("config has neither 'model_type' nor 'architectures'")
            d["model_type"] = by_arch[archs[0]]
        if archs and d["model_type"] in ARCHITECTURES and by_arch[archs[0]] != d["model_type"]:
            raise ValueError(f"architectures {archs[0]!r} does not match model_type {d['model_type']!r}")
        rope_params = d.pop("rope_parameters", None)
        if rope_params:  # transformers 5 folds rope_theta into rope_parameters
            rope_params = dict(rope_params)
            d.setdefault("rope_theta", rope_params.pop("rope_theta", 10000.0))
            if d.get("rope_scaling") is None and rope_params.get("rope_type", rope_params.get("type")) != "default":
                d["rope_scaling"] = rope_params
        names = {f.name for f in fields(cls)}
        extra = dict(d.pop("extra", None) or {})
        extra.update({k: v for k, v in d.items() if k not in names})
        return cls(**{k: v for k, v in d.items() if k in names}, extra=extra)

    @classmethod
    def from_json(cls, path: str | Path) -> "ModelConfig":
        """Read a HF `config.json`."""
        return cls.from_dict(json.loads(Path(path).read_text()))

    def to_dict(self) -> dict[str, Any]:
        """HF-style dict (legacy `rope_theta`/`rope_scaling` plus transformers-5 `rope_parameters`)."""
        d = asdict(self)
        extra = d.pop("extra")
        extra.pop("rope_parameters", None)
        d = {**extra, **d, "architectures": [ARCHITECTURES[self.model_type]]}
        d["rope_parameters"] = {**(self.rope_scaling or {"rope_type": "default"}), "rope_theta": self.rope_theta}
        if self.model_type == "llama":
            for k in ("n_routed_experts", "topk_method", "scoring_func"):
                d.pop(k)
        return d


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype
        x = x.float()
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x.to(dtype)


def yarn_mscale(scale: float, mscale: float = 1.0) -> float:
    return 1.0 if scale <= 1 else 0.1 * mscale * math.log(scale) + 1.0


def rope_frequencies(dim: int, theta: float, scaling: dict | None) -> tuple[torch.Tensor, float]:
    """Inverse frequencies [dim/2] and the cos/sin magnitude (YaRN attention factor; 1.0 otherwise)."""
    base = theta ** (torch.arange(0, dim, 2, dtype=torch.float32, device="cpu") / dim)
    if scaling is None:
        return 1.0 / base, 1.0
    factor = float(scaling["factor"])
    if scaling["type"] == "linear":
        return 1.0 / (base * factor), 1.0
    orig = scaling.get("original_max_position_embeddings", 4096)
    fast, slow = scaling.get("beta_fast") or 32, scaling.get("beta_slow") or 1

    def corr_dim(rot: float) -> float:
        return dim * math.log(orig / (rot * 2 * math.pi)) / (2 * math.log(theta))

    low, high = max(math.floor(corr_dim(fast)), 0), min(math.ceil(corr_dim(slow)), dim - 1)
    ramp = ((torch.arange(dim // 2, dtype=torch.float32, device="cpu") - low) / max(high - low, 1e-3)).clamp(0, 1)
    extrapolate = 1 - ramp
    inv_freq = (1.0 / (factor * base)) * ramp + (1.0 / base) * extrapolate
    mscale, mscale_all = scaling.get("mscale"), scaling.get("mscale_all_dim")
    attn = yarn_mscale(factor, mscale) / yarn_mscale(factor, mscale_all) if mscale and mscale_all else yarn_mscale(factor)
    return inv_freq, float(scaling.get("attention_factor") or attn)


class RotaryEmbedding(nn.Module):
    """Positions [b, s] -> complex rotations [b, s, dim/2] (magnitude = YaRN attention factor)."""

    def __init__(self, dim: int, theta: float, scaling: dict | None):
        super().__init__()
        self.dim, self.theta, self.scaling = dim, theta, scaling
        self.register_buffer("inv_freq", torch.empty(dim // 2), persistent=False)
        self.reset()

    def reset(self, device: torch.device | str | None = None) -> None:
        inv_freq, self.attention_factor = rope_frequencies(self.dim, self.theta, self.scaling)
        if device is None:
            device = "cpu" if self.inv_freq.is_meta else self.inv_freq.device
        self.inv_freq = inv_freq.to(device)

    def forward(self, positions: torch.Tensor) -> torch.Tensor:
        """Real (cos, sin) pairs, not complex numbers: torch.compile fuses real arithmetic, not complex."""
        angles = positions[..., None].float() * self.inv_freq
        return torch.stack([angles.cos(), angles.sin()], -1) * self.attention_factor  # [b, s, dim/2, 2]


def apply_rope(x: torch.Tensor, freqs: torch.Tensor, interleave: bool) -> torch.Tensor:
    """Rotate x [b, s, h, d] by freqs [b, s, d/2, 2] (cos, sin); DeepSeek pairs adjacent dims, Llama the halves."""
    d = x.shape[-1]
    xf = x.float()
    xf = xf.unflatten(-1, (d // 2, 2)) if interleave else xf.unflatten(-1, (2, d // 2)).transpose(-1, -2)
    a, b = xf[..., 0], xf[..., 1]
    cos, sin = freqs[:, :, None, :, 0], freqs[:, :, None, :, 1]
    out = torch.stack([a * cos - b * sin, a * sin + b * cos], -1)  # the complex product, written out
    out = out.flatten(-2) if interleave else out.transpose(-1, -2).flatten(-2)
    return out.type_as(x)


def autocast_input(x: torch.Tensor) -> torch.Tensor:
    """x in autocast's dtype when autocast is on: one cast for all the linears that read x, not one each (the
    same values, since autocast would round x the same way for each; x's gradient is then summed in bf16)."""
    if x.is_floating_point() and torch.is_autocast_enabled(x.device.type):
        return x.to(torch.get_autocast_dtype(x.device.type))
    return x


def _attend_mask_fill(scores: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    return scores if mask is None else scores.masked_fill(~mask, float("-inf"))


class MLA(nn.Module):
    """Multi-head latent attention; the cache holds only c_kv [b, t, r] and the shared rope key k_pe [b, t, dr]."""

    def __init__(self, cfg: ModelConfig, layer_idx: int):
        super().__init__()
        self.layer_idx, self.h = layer_idx, cfg.num_attention_heads
        self.dn, self.dr, self.dv, self.r = cfg.qk_nope_head_dim, cfg.qk_rope_head_dim, cfg.v_head_dim, cfg.kv_lora_rank
        self.interleave, bias = cfg.rope_interleave, cfg.attention_bias
        qk = self.dn + self.dr
        if cfg.q_lora_rank:
            self.q_a_proj = nn.Linear(cfg.hidden_size, cfg.q_lora_rank, bias=bias)
            self.q_a_layernorm = RMSNorm(cfg.q_lora_rank)
            self.q_b_proj = nn.Linear(cfg.q_lora_rank, self.h * qk, bias=False)
        else:
            self.q_proj = nn.Linear(cfg.hidden_size, self.h * qk, bias=False)
        self.kv_a_proj_with_mqa = nn.Linear(cfg.hidden_size, self.r + self.dr, bias=bias)
        self.kv_a_layernorm = RMSNorm(self.r)
        self.kv_b_proj = nn.Linear(self.r, self.h * (self.dn + self.dv), bias=False)
        self.o_proj = nn.Linear(self.h * self.dv, cfg.hidden_size, bias=bias)
        self.softmax_scale = qk**-0.5
        self.decode_kernel = "torch"  # "triton": one-token steps attend with core_model.kernels.mla_decode
        rs = cfg.rope_scaling
        if rs is not None and rs["type"] == "yarn" and rs.get("mscale_all_dim"):
            self.softmax_scale *= yarn_mscale(float(rs["factor"]), rs["mscale_all_dim"]) ** 2

    def forward(self, x, freqs, mask=None, cache=None, absorb: bool = False):
        """x [b, s, d]; mask [b, 1, s, t] bool (True = attend) or None for plain causal; returns [b, s, d]."""
        q_nope, q_pe, c_kv, k_pe = self.project(x, freqs)
        if cache is not None:
            c_kv, k_pe = cache.update(self.layer_idx, c_kv, k_pe)  # [b, t, r], [b, t, dr]
        attend = self._absorbed if absorb else self._naive
        return self.o_proj(attend(q_nope, q_pe, c_kv, k_pe, mask).flatten(2))

    def project(self, x, freqs):
        """x [b, s, d] -> q_nope [b, s, h, dn], rotated q_pe [b, s, h, dr], new latent c_kv [b, s, r] and
        rotated k_pe [b, s, dr]: everything before the cache (one region for torch.compile)."""
        b, s, _ = x.shape
        x = autocast_input(x)
        if hasattr(self, "q_proj"):
            q = self.q_proj(x)
        else:
            q = self.q_b_proj(self.q_a_layernorm(self.q_a_proj(x)))
        q_nope, q_pe = q.view(b, s, self.h, self.dn + self.dr).split([self.dn, self.dr], -1)
        q_pe = apply_rope(q_pe, freqs, self.interleave)  # [b, s, h, dr]
        c_kv, k_pe = self.kv_a_proj_with_mqa(x).split([self.r, self.dr], -1)
        c_kv = self.kv_a_layernorm(c_kv)  # [b, s, r]
        k_pe = apply_rope(k_pe[:, :, None], freqs, self.interleave)[:, :, 0]  # [b, s, dr]
        return q_nope, q_pe, c_kv, k_pe

    def _naive(self, q_nope, q_pe, c_kv, k_pe, mask):
        """Expand per-head K/V from the latent (prefill and training)."""
        b, t, _ = c_kv.shape
        k_nope, v = self.kv_b_proj(c_kv).view(b, t, self.h, self.dn + self.dv).split([self.dn, self.dv], -1)
        k = torch.cat([k_nope, k_pe[:, :, None].expand(-1, -1, self.h, -1)], -1)  # [b, t, h, dn+dr]
        q = torch.cat([q_nope, q_pe], -1)  # [b, s, h, dn+dr]
        o = F.scaled_dot_product_attention(
            q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
            attn_mask=mask, is_causal=mask is None and q.shape[1] > 1, scale=self.softmax_scale)
        return o.transpose(1, 2)  # [b, s, h, dv]

    def _absorbed(self, q_nope, q_pe, c_kv, k_pe, mask):
        """W_UK folded into the query, W_UV applied after attending over the latent (decode)."""
        w = self.kv_b_proj.weight.view(self.h, self.dn + self.dv, self.r)
        q_lat = torch.einsum("bshd,hdc->bshc", q_nope, w[:, : self.dn])  # [b, s, h, r]
        if self.decode_kernel == "triton" and q_nope.shape[1] == 1 and mask is not None:
            from core_model import kernels

            o = kernels.mla_decode(q_lat[:, 0], q_pe[:, 0].to(q_lat.dtype), c_kv, k_pe, mask[:, 0, 0],
                                   self.softmax_scale)[:, None]  # [b, 1, h, r]
            return torch.einsum("bshc,hdc->bshd", o, w[:, self.dn :])
        scores = torch.einsum("bshc,btc->bsht", q_lat, c_kv) + torch.einsum("bshr,btr->bsht", q_pe, k_pe)
        if mask is None and q_nope.shape[1] > 1:
            s, t = q_nope.shape[1], c_kv.shape[1]
            mask = torch.ones(s, t, dtype=torch.bool, device=c_kv.device).tril(t - s)[None, None]
        scores = _attend_mask_fill(scores * self.softmax_scale, None if mask is None else mask.transpose(1, 2))
        p = scores.softmax(-1, dtype=torch.float32).type_as(c_kv)
        o = torch.einsum("bsht,btc->bshc", p, c_kv)
        return torch.einsum("bshc,hdc->bshd", o, w[:, self.dn :])  # [b, s, h, dv]


class GQA(nn.Module):
    """Grouped-query attention of Llama-architecture DeepSeek models; cache holds k, v [b, t, kv_heads, hd]."""

    def __init__(self, cfg: ModelConfig, layer_idx: int):
        super().__init__()
        self.layer_idx, self.h, self.kvh, self.hd = layer_idx, cfg.num_attention_heads, cfg.num_key_value_heads, cfg.attn_head_dim
        bias = cfg.attention_bias
        self.q_proj = nn.Linear(cfg.hidden_size, self.h * self.hd, bias=bias)
        self.k_proj = nn.Linear(cfg.hidden_size, self.kvh * self.hd, bias=bias)
        self.v_proj = nn.Linear(cfg.hidden_size, self.kvh * self.hd, bias=bias)
        self.o_proj = nn.Linear(self.h * self.hd, cfg.hidden_size, bias=bias)

    def forward(self, x, freqs, mask=None, cache=None, absorb: bool = False):
        b, s, _ = x.shape
        x = autocast_input(x)
        q = apply_rope(self.q_proj(x).view(b, s, self.h, self.hd), freqs, False)
        k = apply_rope(self.k_proj(x).view(b, s, self.kvh, self.hd), freqs, False)
        v = self.v_proj(x).view(b, s, self.kvh, self.hd)
        if cache is not None:
            k, v = cache.update(self.layer_idx, k, v)  # [b, t, kvh, hd]
        rep = self.h // self.kvh
        k, v = (z.repeat_interleave(rep, dim=2).transpose(1, 2) for z in (k, v))
        o = F.scaled_dot_product_attention(q.transpose(1, 2), k, v, attn_mask=mask, is_causal=mask is None and s > 1)
        return self.o_proj(o.transpose(1, 2).flatten(2))


class MLP(nn.Module):
    def __init__(self, dim: int, inter_dim: int):
        super().__init__()
        self.gate_proj = nn.Linear(dim, inter_dim, bias=False)
        self.up_proj = nn.Linear(dim, inter_dim, bias=False)
        self.down_proj = nn.Linear(inter_dim, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = autocast_input(x)
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Gate(nn.Module):
    """Router: V2 softmax (greedy / group_limited_greedy) or V3 sigmoid + e_score_correction_bias (noaux_tc)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.k, self.n_experts = cfg.num_experts_per_tok, cfg.n_routed_experts
        self.method, self.scoring = cfg.topk_method, cfg.scoring_func
        self.n_group, self.topk_group = cfg.n_group, cfg.topk_group
        self.norm_topk_prob, self.scale = cfg.norm_topk_prob, cfg.routed_scaling_factor
        # Routing decisions are made in fp32 (as the reference code does) even when the model is bf16.
        self.weight = nn.Parameter(torch.empty(self.n_experts, cfg.hidden_size, dtype=torch.float32))
        if self.scoring == "sigmoid":
            self.register_buffer("e_score_correction_bias", torch.zeros(self.n_experts, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x [T, d] -> weights [T, k] fp32, expert ids [T, k], affinities [T, E] fp32."""
        with torch.autocast(x.device.type, enabled=False):  # routing stays fp32 under mixed precision too
            logits = F.linear(x.float(), self.weight.float())
        scores = logits.softmax(-1) if self.scoring == "softmax" else logits.sigmoid()
        choice = scores + self.e_score_correction_bias if self.scoring == "sigmoid" else scores
        if self.method != "greedy":
            grouped = choice.view(x.shape[0], self.n_group, -1)
            group_scores = grouped.amax(-1) if self.method == "group_limited_greedy" else grouped.topk(2, -1)[0].sum(-1)
            keep = torch.zeros_like(group_scores, dtype=torch.bool)
            keep.scatter_(1, group_scores.topk(self.topk_group, -1)[1], True)
            choice = choice.masked_fill(~keep.repeat_interleave(self.n_experts // self.n_group, -1), float("-inf"))
        idx = choice.topk(self.k, -1)[1]
        weights = scores.gather(1, idx)
        if self.scoring == "softmax" and not (self.norm_topk_prob and self.k > 1):
            return weights * self.scale, idx, scores  # V2: scale XOR renormalise
        if self.norm_topk_prob:
            weights = weights / (weights.sum(-1, keepdim=True) + 1e-20)
        return weights * (self.scale if self.scoring == "sigmoid" else 1.0), idx, scores


@dataclass
class RoutingStats:
    """What the MoE layers of one forward decided, in layer order: pass one as `model(..., routing=stats)`.
    `loads`: tokens routed to each expert [E] per layer; `aux_losses`: balance losses (train mode, alpha > 0)."""

    loads: list[torch.Tensor] = field(default_factory=list)
    aux_losses: list[torch.Tensor] = field(default_factory=list)

    def aux_loss(self) -> torch.Tensor | None:
        """Summed balance loss, or None when no layer computed one."""
        return torch.stack(self.aux_losses).sum() if self.aux_losses else None


class MoE(nn.Module):
    """DeepSeekMoE: shared experts + top-k routed experts, tokens sorted by expert and each expert run once."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.n_experts, self.alpha, self.seq_aux = cfg.n_routed_experts, cfg.aux_loss_alpha, cfg.seq_aux
        self.gate = Gate(cfg)
        self.experts = nn.ModuleList(MLP(cfg.hidden_size, cfg.moe_intermediate_size) for _ in range(self.n_experts))
        n_shared = cfg.n_shared_experts or 0
        self.shared_experts = MLP(cfg.hidden_size, cfg.moe_intermediate_size * n_shared) if n_shared else None
        self.grouped_enabled = True  # use the grouped matmuls once packed (False: the per-expert loop)
        self.packed = False  # pack_experts() ran: the experts' parameters are views of w13 / w2
        self.train_grouped: bool | None = None  # grouped matmuls with gradients too; None: on CUDA only
        self.expert_kernel = "grouped"  # "gemv": at most GEMV_MAX_ROWS (token, expert) rows, one GEMV per row
        self.fp8_experts = None  # core_model.fp8.ExpertWeights, set with expert_kernel "fp8" by a decode step

    def forward(self, x: torch.Tensor, token_mask: torch.Tensor | None = None,
                routing: RoutingStats | None = None) -> torch.Tensor:
        """x [b, s, d]; token_mask [b, s] (False = padding) keeps padding out of loads and the balance loss;
        `routing` receives this layer's expert load and balance loss."""
        b, s, d = x.shape
        flat = x.reshape(-1, d)
        weights, idx, scores = self.gate(flat)
        y = self.dispatch(flat, weights, idx)
        if self.shared_experts is not None:
            y = y + self.shared_experts(flat)
        if routing is not None:
            real = torch.ones(b, s, device=x.device) if token_mask is None else token_mask.to(x.device).float()
            slots = real[..., None].expand(b, s, idx.shape[1])  # [b, s, k]
            routing.loads.append(torch.zeros(self.n_experts, device=x.device).index_add_(0, idx.flatten(), slots.flatten()))
            if self.training and self.alpha > 0:
                routing.aux_losses.append(self.balance_loss(scores, idx, real))
        return y.view(b, s, d)

    def dispatch(self, x: torch.Tensor, weights: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        """Sum_k weights * expert_k(x) for x [T, d]: (token, slot) pairs sorted by expert, each expert run once
        on its contiguous slice (packed: all in two grouped matmuls), then scattered back to their tokens."""
        k = idx.shape[1]
        if self._gemv_ready(x, k):
            return self._experts_gemv(x, weights, idx)
        sorted_ids, order = idx.flatten().sort(stable=True)
        token = order // k  # source token of each sorted (token, slot) pair
        xs = x.index_select(0, token)  # backward: one index_add_, not an accumulating index_put_
        ys = None
        if self._grouped_ready(x):
            try:
                ys = self._experts_grouped(xs, sorted_ids)
            except (RuntimeError, NotImplementedError) as e:  # e.g. a GPU or torch build without the kernel
                self._grouped_ok = False
                log.warning("grouped expert matmul unavailable (%s); using the per-expert loop", e)
        if ys is None:
            counts = torch.bincount(sorted_ids, minlength=self.n_experts).tolist()
            # split, not slicing: its backward is one cat instead of a zero-filled gradient per expert
            ys = torch.cat([self.experts[e](s) for e, s in enumerate(xs.split(counts)) if s.shape[0]])
        # Back to (token, slot) order and summed over the k slots: deterministic, where index_add_ of the k
        # rows of a token is an atomic add on CUDA whose order (and bf16 rounding) changes run to run.
        ys = torch.empty_like(ys).index_copy_(0, order, ys).view(-1, k, ys.shape[-1])
        return (ys * weights[..., None].to(x.dtype)).sum(1)

    @torch.no_grad()
    def pack_experts(self) -> None:
        """Move the routed experts' weights into two stacked tensors (each expert's parameters become views of
        them, so memory does not grow): inference then runs all experts in two grouped matmuls, no host sync."""
        inter, dim = self.experts[0].gate_proj.weight.shape
        w13 = self.experts[0].gate_proj.weight.new_empty(self.n_experts, 2 * inter, dim)  # gate rows, then up
        w2 = self.experts[0].down_proj.weight.new_empty(self.n_experts, dim, inter)
        for e, mlp in enumerate(self.experts):
            for lin, dst in ((mlp.gate_proj, w13[e, :inter]), (mlp.up_proj, w13[e, inter:]), (mlp.down_proj, w2[e])):
                dst.copy_(lin.weight)
                lin.weight = nn.Parameter(dst, requires_grad=lin.weight.requires_grad)
        self.register_buffer("w13", w13, persistent=False)
        self.register_buffer("w2", w2, persistent=False)
        self._grouped_ok = hasattr(torch, "_grouped_mm")
        if not self.packed:
            self.register_load_state_dict_post_hook(MoE._repack_after_load)
        self.packed = True

    def _apply(self, fn, recurse: bool = True):
        """`.to()`, `.cuda()`, `.bfloat16()`, ... convert each parameter apart from the stack: pack again."""
        super()._apply(fn, recurse)
        if self.packed:
            self.pack_experts()
        return self

    def __setstate__(self, state: dict) -> None:
        """copy.deepcopy and unpickling copy each parameter apart from the stack: pack again."""
        super().__setstate__(state)
        if self.packed:
            self.pack_experts()

    @staticmethod
    def _repack_after_load(module: "MoE", incompatible) -> None:
        """load_state_dict(assign=True) replaces the parameters (an in-place load keeps the views)."""
        stacks = {module.w13.untyped_storage().data_ptr(), module.w2.untyped_storage().data_ptr()}
        if any(p.untyped_storage().data_ptr() not in stacks for p in module.experts.parameters()):
            module.pack_experts()

    def grouped_available(self, dtype: torch.dtype, device: torch.device) -> bool:
        """Enabled and packed; on CUDA torch._grouped_mm takes bf16 only."""
        if not (self.grouped_enabled and self.packed and self._grouped_ok):
            return False
        return device.type != "cuda" or dtype == torch.bfloat16

    def _grouped_ready(self, x: torch.Tensor) -> bool:
        """grouped_available, and either no gradient wanted or `train_grouped` (default: on CUDA, where the
        grouped backward beats one matmul per expert; on CPU the loop is at the matmul floor)."""
        if not self.grouped_available(x.dtype, x.device):
            return False
        if not self._wants_grad(x):
            return True
        return self.train_grouped if self.train_grouped is not None else x.device.type == "cuda"

    def _wants_grad(self, x: torch.Tensor) -> bool:
        return torch.is_grad_enabled() and (x.requires_grad or self.experts[0].gate_proj.weight.requires_grad)

    def _gemv_ready(self, x: torch.Tensor, k: int) -> bool:
        if self.expert_kernel != "gemv" or x.shape[0] * k > GEMV_MAX_ROWS or not self._grouped_ready(x):
            return False
        from core_model import kernels

        return kernels.available(x.device)

    def _experts_gemv(self, x: torch.Tensor, weights: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        """Small batches: each (token, expert) row multiplies its expert's packed weights directly (a GEMV
        reading only the experts hit), no sort and no grouped-matmul tiles padded from a handful of rows."""
        from core_model import kernels

        t, k = idx.shape
        xs = x[:, None].expand(t, k, x.shape[1]).reshape(t * k, -1)
        gate, up = kernels.expert_gemv(xs, self.w13, idx.flatten()).chunk(2, -1)
        ys = kernels.expert_gemv(F.silu(gate) * up, self.w2, idx.flatten())  # [t*k, d]
        return (ys.view(t, k, -1) * weights[..., None].to(x.dtype)).sum(1)

    def _experts_grouped(self, xs: torch.Tensor, sorted_ids: torch.Tensor) -> torch.Tensor:
        """Every expert on its rows of xs [T*k, d] (sorted by expert) with torch._grouped_mm over the packed
        weights: the expert offsets stay on the device."""
        if self._wants_grad(xs):
            from core_model.experts import grouped_mlp_train

            return grouped_mlp_train(xs, sorted_ids, self)
        experts = torch.arange(self.n_experts, device=xs.device, dtype=sorted_ids.dtype)
        offs = torch.searchsorted(sorted_ids, experts, right=True).to(torch.int32)  # end of each expert's rows
        if self.expert_kernel == "fp8" and self.fp8_experts is not None:
            return self.fp8_experts.mlp(xs, offs, F.silu)
        gate, up = torch._grouped_mm(xs, self.w13.transpose(1, 2), offs=offs).chunk(2, -1)  # [T*k, I] each
        return torch._grouped_mm(F.silu(gate) * up, self.w2.transpose(1, 2), offs=offs)  # [T*k, d]

    def balance_loss(self, scores: torch.Tensor, idx: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        """alpha * sum_i f_i P_i, f_i = E/(k T) * tokens routed to i, P_i = mean affinity, over real tokens
        (real [b, s]); per sequence and averaged when seq_aux (DeepSeek-V2/V3)."""
        e, k = self.n_experts, idx.shape[1]
        g = real.shape[0] if self.seq_aux else 1  # groups: each sequence, or the whole batch as one
        if self.gate.scoring == "sigmoid":  # V3 normalises affinities before the balance term
            scores = scores / scores.sum(-1, keepdim=True)
        real = real.reshape(g, -1)
        scores = scores.reshape(g, -1, e) * real[..., None]
        slots = real[..., None].expand(-1, -1, k).reshape(g, -1)  # one entry per (token, routed slot)
        n = real.sum(1).clamp(min=1)[:, None]  # real tokens per group
        counts = torch.zeros(g, e, device=scores.device).scatter_add_(1, idx.reshape(g, -1), slots)
        f = counts * e / (n * k)
        return self.alpha * (f * scores.sum(1) / n).sum(1).mean()

    @torch.no_grad()
    def update_bias(self, rate: float, load: torch.Tensor) -> None:
        """V3 aux-loss-free balancing from a forward's expert load [E]: b_i += rate * sign(mean load - load_i)."""
        if self.gate.scoring != "sigmoid":
            return
        load = load.to(self.gate.e_score_correction_bias.device)
        self.gate.e_score_correction_bias += rate * torch.sign(load.mean() - load)


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig, layer_idx: int):
        super().__init__()
        self.self_attn = GQA(cfg, layer_idx) if cfg.model_type == "llama" else MLA(cfg, layer_idx)
        self.mlp = MoE(cfg) if cfg.is_moe_layer(layer_idx) else MLP(cfg.hidden_size, cfg.intermediate_size)
        self.input_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.post_attention_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)

    def forward(self, x, freqs, mask=None, cache=None, absorb=False, token_mask=None, routing=None):
        return self.ffn(x, self.self_attn(self.input_layernorm(x), freqs, mask, cache, absorb), token_mask, routing)

    def ffn(self, x, attn_out, token_mask=None, routing=None):
        """Both residuals around the feed-forward half: everything after attention (one region for torch.compile)."""
        x = x + attn_out
        h = self.post_attention_layernorm(x)
        return x + (self.mlp(h, token_mask, routing) if isinstance(self.mlp, MoE) else self.mlp(h))


class SharedHead(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.head = nn.Linear(cfg.hidden_size, cfg.vocab_size, bias=False)


class MTPLayer(Block):
    """DeepSeek-V3 multi-token prediction module: h' = Block(eh_proj[enorm(emb(t_{i+1})); hnorm(h_i)])."""

    def __init__(self, cfg: ModelConfig, layer_idx: int):
        super().__init__(cfg, layer_idx)
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.enorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.hnorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.eh_proj = nn.Linear(2 * cfg.hidden_size, cfg.hidden_size, bias=False)
        self.shared_head = SharedHead(cfg)


class DecoderModel(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.layers = nn.ModuleList(Block(cfg, i) for i in range(cfg.num_hidden_layers))
        self.norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)


class Transformer(nn.Module):
    """Causal LM: `model(input_ids [b, s], attention_mask=None) -> logits [b, s, vocab]`."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = cfg = config
        self.model = DecoderModel(cfg)
        self.lm_head = nn.Linear(cfg.hidden_size, cfg.vocab_size, bias=False)
        if cfg.tie_word_embeddings:
            self.lm_head.weight = self.model.embed_tokens.weight
        rope_dim = cfg.attn_head_dim if cfg.model_type == "llama" else cfg.qk_rope_head_dim
        self.rotary = RotaryEmbedding(rope_dim, cfg.rope_theta, cfg.rope_scaling)
        n_mtp = cfg.num_nextn_predict_layers if cfg.model_type == "deepseek_v3" else 0
        self.mtp = nn.ModuleList(MTPLayer(cfg, cfg.num_hidden_layers + i) for i in range(n_mtp))
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)
            if getattr(m, "bias", None) is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, Gate):
            nn.init.normal_(m.weight, std=0.02)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, *,
                cache=None, absorb: bool | None = None, return_hidden: bool = False,
                routing: RoutingStats | None = None):
        """Logits [b, s, V]. attention_mask [b, s] (1 real, 0 pad; left padding). With a `KVCache` the new
        tokens are appended to it; `absorb` (default: decode steps with a cache) picks absorbed MLA; `routing`
        collects the MoE layers' expert loads and balance losses."""
        from core_model.cache import attention_layout

        b, s = input_ids.shape
        positions, mask = attention_layout(b, s, attention_mask, cache, input_ids.device)
        freqs = self.rotary(positions)
        absorb = (cache is not None and s == 1) if absorb is None else absorb
        h = self.model.embed_tokens(input_ids)
        for layer in self.model.layers:
            h = layer(h, freqs, mask, cache, absorb, attention_mask, routing)
        if cache is not None:
            cache.advance(s, attention_mask)
        logits = self.lm_head(self.model.norm(h))
        return (logits, h) if return_hidden else logits

    def mtp_logits(self, hidden: torch.Tensor, next_ids: torch.Tensor, depth: int = 0,
                   attention_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """MTP module `depth`: hidden [b, s, d] of position i plus token i+1+depth -> (logits for i+2+depth, hidden)."""
        from core_model.cache import attention_layout

        if depth >= len(self.mtp):
            raise ValueError(f"model has {len(self.mtp)} MTP layers; depth {depth} is not available")
        layer = self.mtp[depth]
        b, s = next_ids.shape
        positions, mask = attention_layout(b, s, attention_mask, None, next_ids.device)
        h = layer.eh_proj(torch.cat([layer.enorm(layer.embed_tokens(next_ids)), layer.hnorm(hidden)], -1))
        h = Block.forward(layer, h, self.rotary(positions), mask)
        return layer.shared_head.head(layer.shared_head.norm(h)), h

    def update_routing_bias(self, rate: float, routing: RoutingStats) -> None:
        """Apply the V3 aux-loss-free bias update from a forward's expert loads (no-op for V2/llama)."""
        moes = [m for m in self.model.layers if isinstance(m.mlp, MoE)]
        if len(routing.loads) != len(moes):
            raise ValueError(f"routing has {len(routing.loads)} expert loads for {len(moes)} MoE layers: pass the "
                             "RoutingStats of one forward of this model")
        for layer, load in zip(moes, routing.loads):
            layer.mlp.update_bias(rate, load)

    def pack_experts(self) -> "Transformer":
        """Stack each MoE layer's expert weights for grouped-matmul inference (see `MoE.pack_experts`)."""
        for m in self.modules():
            if isinstance(m, MoE):
                m.pack_experts()
        return self

    def save_pretrained(self, path: str | Path, **kwargs) -> None:
        """Write config.json + safetensors in HF layout (see `core_model.checkpoint_write.save_pretrained`)."""
        from core_model.checkpoint_write import save_pretrained

        save_pretrained(self, path, **kwargs)
