"""GRPO loop throughput: proofcode's Ray loop vs TRL's GRPOTrainer, same tiny model, prompts and reward.

    python benchmarks/bench_rl.py [--steps 3] [--rounds 2] [--prompts-per-step 16] [--group-size 8]

Both sides sample G completions per prompt, score them with the same verified reward
(`workers.rl.rewards.RewardFn`: sympy math check + sandboxed code tests) and take one GRPO step.
The two sides alternate round by round, so both see the same machine load. Start-up (Ray actors,
TRL's trainer construction) is excluded; every step of a round counts.
"""
from __future__ import annotations

import argparse
import os
import warnings
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
warnings.filterwarnings("ignore", category=FutureWarning)  # transformers' deprecation notices

MAX_NEW = 12


def ours_factory(args, run_dir: Path):
    from core_model.grpo import GRPOConfig
    from workers.rl.config import SamplingConfig, tiny_preset
    from workers.rl.loop import RLRun

    config = tiny_preset(
        run_dir=run_dir, steps=10_000, prompts_per_step=args.prompts_per_step, lr=3e-4, threads=args.threads,
        grpo=GRPOConfig(group_size=args.group_size, kl_coef=0.0), sampling=SamplingConfig(max_new_tokens=MAX_NEW),
        progress=False, checkpoint_every=10_000,
    )
    run = RLRun(config)
    state = {"step": 0}

    def round_(n: int) -> tuple[float, int]:
        t0 = time.perf_counter()
        samples = 0
        for _ in range(n):
            state["step"] += 1
            run.step(state["step"])
            samples += args.prompts_per_step * args.group_size
        return time.perf_counter() - t0, samples

    return round_, run.shutdown


def trl_factory(args, run_dir: Path):
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast, TrainerCallback
    from transformers.trainer_callback import PrinterCallback
    from trl import GRPOConfig as TRLConfig
    from trl import GRPOTrainer

    from core_model import EMBEDDED_TINY_PATH
    from workers.rl.rewards import RewardFn
    from workers.rl.tasks import make_tiny_tasks, split_tasks

    torch.set_num_threads(args.threads)
    train, _ = split_tasks(make_tiny_tasks())
    by_id = {t.id: t for t in train}
    tokenizer = PreTrainedTokenizerFast.from_pretrained(str(EMBEDDED_TINY_PATH))
    tokenizer.padding_side = "left"
    # the same prompt ids as ours: BOS + prompt (our generate adds BOS)
    data = Dataset.from_list([{"prompt": tokenizer.bos_token + t.prompt, "task_id": t.id} for t in train])
    model = AutoModelForCausalLM.from_pretrained(str(EMBEDDED_TINY_PATH), dtype=torch.float32)
    reward_fn = RewardFn()

    def reward(completions, task_id, **_):
        return [reward_fn(by_id[i], c).reward for c, i in zip(completions, task_id)]

    n = args.prompts_per_step * args.group_size
    config = TRLConfig(
        output_dir=str(run_dir), per_device_train_batch_size=n, num_generations=args.group_size,
        gradient_accumulation_steps=1, max_completion_length=MAX_NEW, temperature=1.0, beta=0.0,
        learning_rate=3e-4, max_steps=args.steps, logging_steps=1, report_to="none", save_strategy="no",
        disable_tqdm=True, use_cpu=True, bf16=False, dataloader_num_workers=0, seed=0,
    )
    steps_done = {"n": 0}

    class Count(TrainerCallback):
        def on_step_end(self, *a, **k):
            steps_done["n"] += 1

    trainer = GRPOTrainer(model=model, reward_funcs=[reward], args=config, train_dataset=data,
                          processing_class=tokenizer, callbacks=[Count()])
    trainer.remove_callback(PrinterCallback)  # keep the table readable: no per-step log dicts

    def round_(n_steps: int) -> tuple[float, int]:
        trainer.args.max_steps = n_steps
        steps_done["n"] = 0
        t0 = time.perf_counter()
        trainer.train()
        return time.perf_counter() - t0, steps_done["n"] * n

    return round_, lambda: None


def main(argv: list[str] | None = None) -> int:
    import tempfile

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=3, help="GRPO steps per side per round")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--prompts-per-step", type=int, default=16)
    p.add_argument("--group-size", type=int, default=8)
    p.add_argument("--threads", type=int, default=1, help="torch threads per process")
    args = p.parse_args(argv)

    import ray

    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False, configure_logging=False)
    tmp = Path(tempfile.mkdtemp(prefix="bench-rl-"))
    sides = {"proofcode": ours_factory(args, tmp / "ours")}
    try:
        sides["trl"] = trl_factory(args, tmp / "trl")
        trl_error = None
    except ImportError as exc:  # TRL not installed here
        trl_error = f"TRL not available ({exc}); install with: pip install --no-deps trl accelerate datasets"
    for fn, _ in sides.values():  # warm-up step each (first-call costs), not timed
        fn(1)
    rows = []
    for r in range(args.rounds):
        for name, (fn, _) in sides.items():
            seconds, samples = fn(args.steps)
            rows.append((name, r, args.steps, samples, seconds))
    for _, close in sides.values():
        close()
    ray.shutdown()

    print(f"{'side':<10} {'round':>5} {'steps':>5} {'samples':>8} {'seconds':>8} {'samples/s':>10} {'step_s':>7}")
    for name, r, steps, samples, seconds in rows:
        print(f"{name:<10} {r:>5} {steps:>5} {samples:>8} {seconds:>8.2f} {samples / seconds:>10.1f} {seconds / steps:>7.2f}")
    rate = {n: statistics.median(s / t for m, _, _, s, t in rows if m == n) for n in sides}
    if trl_error:
        print(trl_error)
        print(f"proofcode: {rate['proofcode']:.1f} samples/s; ratio vs TRL: not measured")
    else:
        print(f"ratio proofcode/trl samples/s: {rate['proofcode'] / rate['trl']:.2f}x "
              f"(proofcode {rate['proofcode']:.1f}, trl {rate['trl']:.1f}; target >= 2x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
