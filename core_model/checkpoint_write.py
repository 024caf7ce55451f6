"""Write Hugging Face format checkpoints (config.json + single or sharded *.safetensors) from a model.

Kept apart from loading (core_model/checkpoint.py) so that `Transformer.save_pretrained` can use it without
core_model/model.py importing the loader, which imports the model.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import torch

INDEX_NAME = "model.safetensors.index.json"
SINGLE_NAME = "model.safetensors"
_SIZE_UNITS = {"KB": 10**3, "MB": 10**6, "GB": 10**9, "KIB": 2**10, "MIB": 2**20, "GIB": 2**30}


class CheckpointError(ValueError):
    """A checkpoint directory that cannot be loaded or written; the message names the file or tensor."""


def _external_name(name: str, cfg) -> str:
    if name.startswith("mtp."):
        i, rest = name[4:].split(".", 1)
        return f"model.layers.{cfg.num_hidden_layers + int(i)}.{rest}"
    return name


def _parse_size(size: int | str) -> int:
    if isinstance(size, int):
        return size
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMG]I?B)\s*", size.upper())
    if not m:
        raise CheckpointError(f"max_shard_size {size!r} is not a byte count like 5GB, 500MB or 1048576")
    return int(float(m.group(1)) * _SIZE_UNITS[m.group(2)])


def save_pretrained(model, path: str | Path, max_shard_size: int | str = "5GB") -> None:
    """Write config.json and safetensors (sharded with an index when larger than max_shard_size)."""
    from safetensors.torch import save_file

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    cfg = model.config
    limit = _parse_size(max_shard_size)
    tensors = {_external_name(k, cfg): v.detach().contiguous() for k, v in model.state_dict().items()
               if not (cfg.tie_word_embeddings and k == "lm_head.weight")}
    shards: list[dict[str, torch.Tensor]] = [{}]
    size = 0
    for name, t in tensors.items():
        nbytes = t.numel() * t.element_size()
        if shards[-1] and size + nbytes > limit:
            shards.append({})
            size = 0
        t = t.cpu()
        if t.untyped_storage().nbytes() != nbytes:  # a view (packed experts): safetensors refuses shared storage
            t = t.clone()
        shards[-1][name] = t
        size += nbytes
    dtype_name = str(model.lm_head.weight.dtype).removeprefix("torch.")
    config = {**cfg.to_dict(), "num_nextn_predict_layers": len(model.mtp) or cfg.num_nextn_predict_layers,
              "torch_dtype": dtype_name, "dtype": dtype_name}
    config.pop("quantization_config", None)  # weights are written dequantized
    (path / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    if len(shards) == 1:
        save_file(shards[0], str(path / SINGLE_NAME), metadata={"format": "pt"})
        return
    weight_map = {}
    for i, shard in enumerate(shards, 1):
        fname = f"model-{i:05d}-of-{len(shards):05d}.safetensors"
        save_file(shard, str(path / fname), metadata={"format": "pt"})
        weight_map.update({name: fname for name in shard})
    total = sum(t.numel() * t.element_size() for t in tensors.values())
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (path / INDEX_NAME).write_text(json.dumps(index, indent=2) + "\n")
