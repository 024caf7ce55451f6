"""RL checkpoints: model + optimizer + schedule + RNG + data cursor + step, written atomically.

Layout: RUN_DIR/checkpoints/step_000012/{config.json, model.safetensors, tokenizer.json, trainer_state.pt}.
A directory appears under its final name only when complete (write to a temp name, then rename), so a
kill -9 mid-save leaves the previous checkpoint as the latest.
"""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import torch

_STEP_DIR = re.compile(r"^step_(\d{6,})$")


def checkpoint_dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / "checkpoints"


def save_checkpoint(run_dir: str | Path, step: int, save_model, trainer_state: dict, keep: int = 2) -> Path:
    """Write checkpoint `step`: `save_model(dir)` writes the weights; `trainer_state` goes to trainer_state.pt."""
    root = checkpoint_dir(run_dir)
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step_{step:06d}"
    tmp = root / f".tmp_step_{step:06d}_{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    save_model(tmp)
    torch.save({**trainer_state, "step": step}, tmp / "trainer_state.pt")
    if final.exists():  # re-saving a step after a resume: replace it
        shutil.rmtree(final)
    os.replace(tmp, final)
    for old in list_checkpoints(run_dir)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def list_checkpoints(run_dir: str | Path) -> list[Path]:
    """Complete checkpoints, oldest first."""
    root = checkpoint_dir(run_dir)
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if (m := _STEP_DIR.match(p.name)) and p.is_dir()]
    return [p for _, p in sorted(found)]


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    ckpts = list_checkpoints(run_dir)
    return ckpts[-1] if ckpts else None


def load_trainer_state(path: str | Path) -> dict:
    """trainer_state.pt of a checkpoint directory (our own file, so full unpickling is allowed)."""
    file = Path(path) / "trainer_state.pt"
    if not file.is_file():
        raise FileNotFoundError(f"{path} is not an RL checkpoint (no trainer_state.pt)")
    return torch.load(file, map_location="cpu", weights_only=False)
