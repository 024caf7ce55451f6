"""Make the embedded tiny checkpoint: byte-level tokenizer + a small MoE model SFT'd on the tiny task set.

    python -m workers.rl.make_tiny [--out core_model/assets/tiny] [--steps 500] [--continue-steps 800]

The checkpoint is made to have a skill it rarely uses: every math task can be answered directly
(`85`, mostly wrong for a model this small) or with a worked solution (`[7+8=15,4+3+1=8]85`, mostly
right). Drills teach carrying worked solutions out; few full examples open one. So greedy decoding
answers directly (~15% held-out) while sampling opens worked solutions now and then (pass@8 ~70%):
the gap GRPO can close.
"""
from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
from collections import Counter
from pathlib import Path

from core_model import model_preset

SHIPPED = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json")

# The `tiny` preset (MLA + routed/shared experts), shallower and with shorter positions: the tasks
# are a few dozen bytes, and it must train and RL on 2 CPU cores.
TINY_MODEL = {**model_preset("tiny"), "num_hidden_layers": 3, "moe_intermediate_size": 96,
              "max_position_embeddings": 256}


def make_tiny(out: str | Path, steps: int = 500, continue_steps: int = 800, seed: int = 0, threads: int = 2,
              lr: float = 5e-3, n_tasks: int = 12000, worked_fraction: float = 0.15, drill_fraction: float = 0.5,
              copies: int = 4, rare_boost: int = 4,
              progress: bool = True) -> dict:
    """Train the tiny checkpoint into `out` and return its metrics (held-out accuracy included)."""
    from core_model import load_tokenizer, train_bpe
    from core_model import TrainConfig, train

    from .config import tiny_preset
    from .evaluate import heldout_accuracy
    from .policy import load_policy
    from .rewards import RewardConfig, RewardFn
    from .tasks import make_tiny_tasks, sft_text, split_tasks

    out = Path(out)
    train_tasks, heldout = split_tasks(make_tiny_tasks(n=n_tasks, seed=seed))
    pick = random.Random(seed)
    with tempfile.TemporaryDirectory(prefix="proofcode-tiny-") as tmp:
        tmp = Path(tmp)
        data = tmp / "sft.jsonl"
        with data.open("w") as fh:
            # each task several times, the style drawn per copy: no task is tied to one style
            for t, repeat in _repeats(train_tasks, copies, rare_boost):
                for _ in range(repeat):
                    fh.write(json.dumps(_sft_record(t, pick, worked_fraction, drill_fraction)) + "\n")
        # 256 bytes + 3 specials and no merges: every character is one token, digits stay digits.
        texts = [t.prompt + sft_text(t, True) for t in train_tasks]
        train_bpe(texts, vocab_size=259).save(tmp / "tok")
        common = dict(data=str(data), data_format="sft", max_data_bytes=None, seq_len=80, batch_size=64,
                      warmup_steps=10, weight_decay=0.0, num_threads=threads, progress=progress)
        # Two cosine cycles, as the shipped checkpoint was made (500 steps at 5e-3, then 800 at 3e-3).
        train(TrainConfig(output_dir=str(tmp / "phase1"), model=TINY_MODEL, tokenizer=str(tmp / "tok"),
                          max_steps=steps, lr=lr, seed=seed, **common))
        metrics = train(TrainConfig(output_dir=str(tmp / "run"), init_from=str(tmp / "phase1"),
                                    max_steps=continue_steps, lr=lr * 0.6, seed=seed + 1, **common))
        out.mkdir(parents=True, exist_ok=True)
        for name in SHIPPED:
            shutil.copy2(tmp / "run" / name, out / name)
    load_tokenizer(out)  # the shipped files load as a checkpoint
    model, tokenizer = load_policy(out, threads)
    sampling = tiny_preset().sampling
    acc = heldout_accuracy(model, tokenizer, heldout[:300], RewardFn(RewardConfig()), sampling)
    return {"heldout_acc": acc, "heldout": min(300, len(heldout)), "train_tasks": len(train_tasks),
            "loss": metrics.get("loss"), "out": str(out)}


def _family(task) -> str:
    if task.kind != "math":
        return task.kind
    return "x" if "x" in task.prompt else next(c for c in task.prompt if c in "+-*")


def _repeats(tasks, copies: int, rare_boost: int) -> list[tuple]:
    """(task, copies) pairs; math families with under a quarter of the largest one's tasks (multiply and
    linear equations have ~700 distinct prompts, addition ~8000) get `rare_boost` times more copies."""
    sizes = Counter(_family(t) for t in tasks if t.kind == "math")
    rare = {f for f, n in sizes.items() if n * 4 < max(sizes.values(), default=0)}
    return [(t, copies * (rare_boost if t.kind == "math" and _family(t) in rare else 1)) for t in tasks]


def _sft_record(task, rng: random.Random, worked_fraction: float, drill_fraction: float) -> dict:
    """One SFT example. A drill opens the worked solution in the prompt, so it teaches how to carry one
    out without teaching the model to open one; the rest show a worked solution `worked_fraction` of
    the time. The start thus has the skill but rarely uses it unprompted: RL's job is to learn when."""
    from .tasks import sft_text

    if task.solution and rng.random() < drill_fraction:
        return {"prompt": task.prompt + task.solution[0], "completion": task.solution[1:]}
    return {"prompt": task.prompt, "completion": sft_text(task, rng.random() < worked_fraction)}


def main(argv: list[str] | None = None) -> int:
    from core_model import EMBEDDED_TINY_PATH

    p = argparse.ArgumentParser(prog="python -m workers.rl.make_tiny", description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(EMBEDDED_TINY_PATH), help="checkpoint directory to write")
    p.add_argument("--steps", type=int, default=500, help="SFT steps of the first cycle (fewer: a weaker start)")
    p.add_argument("--continue-steps", type=int, default=800, help="SFT steps of the second cycle")
    p.add_argument("--lr", type=float, default=5e-3)
    p.add_argument("--tasks", type=int, default=12000, help="size of the generated task set (before the split)")
    p.add_argument("--worked-fraction", type=float, default=0.15,
                   help="share of full SFT examples that show the worked solution")
    p.add_argument("--drill-fraction", type=float, default=0.5,
                   help="share of math examples whose prompt opens the worked solution ('47+38=[')")
    p.add_argument("--rare-boost", type=int, default=4,
                   help="extra copies of the math families with few distinct prompts (multiply, linear)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    result = make_tiny(args.out, steps=args.steps, continue_steps=args.continue_steps, seed=args.seed,
                       threads=args.threads, lr=args.lr, n_tasks=args.tasks, worked_fraction=args.worked_fraction,
                       drill_fraction=args.drill_fraction, rare_boost=args.rare_boost)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
