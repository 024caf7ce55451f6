"""Load Hugging Face format checkpoints (config.json + single or sharded *.safetensors); writing them is
core_model/checkpoint_write.py.

Tensor names are the hub's original DeepSeek names (per-expert `mlp.experts.{j}.gate_proj.weight`); the
fused-expert layout (`mlp.experts.gate_up_proj` [E, 2I, d], `mlp.experts.down_proj` [E, d, I]) is accepted on
load. DeepSeek-V3 multi-token-prediction weights live at `model.layers.{num_hidden_layers + i}.*`.
"""
from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import torch
from tqdm import tqdm

from core_model.checkpoint_write import INDEX_NAME, SINGLE_NAME, CheckpointError, _external_name
from core_model.checkpoint_write import save_pretrained  # noqa: F401  (re-exported: core_model.save_pretrained)
from core_model.model import ModelConfig, Transformer

log = logging.getLogger("proofcode.core_model")

_FUSED = re.compile(r"^(model\.layers\.\d+\.mlp\.experts)\.(gate_up_proj|down_proj)(\.weight)?$")
_LAYER = re.compile(r"^model\.layers\.(\d+)\.(.*)$")


def _weight_files(path: Path) -> list[Path]:
    index = path / INDEX_NAME
    if index.exists():
        try:
            weight_map = json.loads(index.read_text())["weight_map"]
        except (ValueError, KeyError) as e:
            raise CheckpointError(f"{index}: not a valid safetensors index ({e})") from e
        files = [path / name for name in sorted(set(weight_map.values()))]
        missing = [f.name for f in files if not f.exists()]
        if missing:
            raise CheckpointError(f"{path}: shard(s) listed in {INDEX_NAME} are missing: {', '.join(missing)}")
        return files
    if (path / SINGLE_NAME).exists():
        return [path / SINGLE_NAME]
    files = sorted(path.glob("*.safetensors"))
    if files:
        return files
    hint = " (found PyTorch .bin weights: convert them to safetensors)" if list(path.glob("*.bin")) else ""
    raise CheckpointError(f"{path}: no *.safetensors weights found{hint}")


def _internal_name(name: str, cfg: ModelConfig) -> str | None:
    """Checkpoint tensor name -> state-dict name (None: a tensor we deliberately ignore)."""
    if name.endswith("rotary_emb.inv_freq") or (cfg.tie_word_embeddings and name == "lm_head.weight"):
        return None  # recomputed / the tied copy of embed_tokens
    m = _LAYER.match(name)
    if m and int(m.group(1)) >= cfg.num_hidden_layers:
        return f"mtp.{int(m.group(1)) - cfg.num_hidden_layers}.{m.group(2)}"
    return name


def _split_fused(prefix: str, kind: str, t: torch.Tensor) -> dict[str, torch.Tensor]:
    out = {}
    for j in range(t.shape[0]):
        if kind == "gate_up_proj":
            gate, up = t[j].chunk(2, dim=0)
            out[f"{prefix}.{j}.gate_proj.weight"], out[f"{prefix}.{j}.up_proj.weight"] = gate, up
        else:
            out[f"{prefix}.{j}.down_proj.weight"] = t[j]
    return out


class _Shards:
    """Open safetensors files with a key -> file map, so an FP8 weight's scale may live in another shard."""

    def __init__(self, files: list[Path]):
        from safetensors import safe_open

        self.handles, self.where = {}, {}
        for file in files:
            try:
                self.handles[file] = safe_open(str(file), framework="pt", device="cpu")
            except Exception as e:  # safetensors raises its own error types for truncated or foreign files
                raise CheckpointError(f"{file}: cannot be read as safetensors ({e})") from e
            self.where.update({key: file for key in self.handles[file].keys()})

    def get(self, key: str) -> torch.Tensor:
        return self.handles[self.where[key]].get_tensor(key)


def _dequantize_fp8(w: torch.Tensor, scale_inv: torch.Tensor, block: list[int], key: str) -> torch.Tensor:
    """DeepSeek-V3 block FP8: weight [out, in] times one fp32 scale per (block x block) tile."""
    rows, cols = w.shape
    br, bc = block
    if scale_inv.shape != (-(-rows // br), -(-cols // bc)):
        raise CheckpointError(f"tensor {key + '_scale_inv'!r} has shape {tuple(scale_inv.shape)}, expected "
                              f"{(-(-rows // br), -(-cols // bc))} for {block} blocks of {tuple(w.shape)}")
    scale = scale_inv.float().repeat_interleave(br, 0)[:rows].repeat_interleave(bc, 1)[:, :cols]
    return w.float() * scale


def _read_tensors(files: list[Path], cfg: ModelConfig, expected: dict, dtype, device) -> dict[str, torch.Tensor]:
    shards = _Shards(files)
    block = (cfg.extra.get("quantization_config") or {}).get("weight_block_size", [128, 128])
    state: dict[str, torch.Tensor] = {}
    for key, file in tqdm(shards.where.items(), desc="load weights", unit="tensor", leave=False, disable=None):
        if key.endswith("_scale_inv"):
            continue  # consumed with its weight
        t = shards.get(key)
        if key + "_scale_inv" in shards.where:
            t = _dequantize_fp8(t, shards.get(key + "_scale_inv"), block, key)
        fused = _FUSED.match(key)
        parts = _split_fused(fused.group(1), fused.group(2), t) if fused else {_internal_name(key, cfg): t}
        for name, t in parts.items():
            if name is None or (name.startswith("mtp.") and name not in expected):
                continue  # ignored tensor, or MTP weights not wanted (reported by the caller)
            if name not in expected:
                raise CheckpointError(f"{file.name}: unexpected tensor {key!r} for a "
                                      f"{cfg.model_type} model with this config.json")
            if tuple(t.shape) != tuple(expected[name].shape):
                raise CheckpointError(f"{file.name}: tensor {key!r} has shape {tuple(t.shape)}, "
                                      f"config.json implies {tuple(expected[name].shape)}")
            target = torch.float32 if _is_router(name) else dtype
            state[name] = t.to(device=device, dtype=target)
    return state


def _is_router(name: str) -> bool:
    return name.endswith("mlp.gate.weight") or name.endswith("e_score_correction_bias")


def load_pretrained(path: str | Path, dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu",
                    *, load_mtp: bool = True, pack_experts: bool = True) -> Transformer:
    """Load a HF-format DeepSeek-V2/V3 or Llama checkpoint directory into a `Transformer` (eval mode).

    pack_experts: stack each MoE layer's experts in place for grouped-matmul inference (`Transformer.pack_experts`)."""
    path = Path(path)
    config_file = path / "config.json"
    if not config_file.is_file():
        raise CheckpointError(f"{path}: no config.json (is this a Hugging Face checkpoint directory?)")
    try:
        cfg = ModelConfig.from_json(config_file)
    except (ValueError, TypeError) as e:
        raise CheckpointError(f"{config_file}: {e}") from e
    files = _weight_files(path)
    with torch.device("meta"):
        model = Transformer(cfg)  # no memory: parameters are replaced by the loaded tensors
    expected = dict(model.state_dict())
    if cfg.tie_word_embeddings:
        expected.pop("lm_head.weight", None)
    if not load_mtp:
        expected = {k: v for k, v in expected.items() if not k.startswith("mtp.")}
    state = _read_tensors(files, cfg, expected, dtype, device)
    mtp_keys = [k for k in expected if k.startswith("mtp.")]
    if mtp_keys and any(k not in state for k in mtp_keys):
        log.warning("%s: config declares %d multi-token-prediction layer(s) but their weights are absent or "
                    "incomplete; loading without MTP", path, len(model.mtp))
    elif len(model.mtp) and not load_mtp:
        log.warning("%s: skipping the multi-token-prediction layer(s) (load_mtp=False)", path)
    if len(model.mtp) and (not load_mtp or any(k not in state for k in mtp_keys)):
        model.mtp = torch.nn.ModuleList()
        state = {k: v for k, v in state.items() if not k.startswith("mtp.")}
        expected = {k: v for k, v in expected.items() if not k.startswith("mtp.")}
    missing = [k for k in expected if k not in state]
    if missing:
        raise CheckpointError(f"{path}: {len(missing)} tensor(s) missing from {[f.name for f in files]}, "
                              f"e.g. {_external_name(missing[0], cfg)!r}")
    model.load_state_dict(state, strict=False, assign=True)
    if cfg.tie_word_embeddings:
        model.lm_head.weight = model.model.embed_tokens.weight
    model.rotary.reset(device)
    left = [n for n, p in list(model.named_parameters()) + list(model.named_buffers()) if p.is_meta]
    if left:
        raise CheckpointError(f"{path}: tensor {_external_name(left[0], cfg)!r} was not loaded")
    if pack_experts:
        model.pack_experts()
    return model.eval()
