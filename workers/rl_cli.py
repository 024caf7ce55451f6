"""`proofcode rl ...`: GRPO fine-tuning with verified rewards, its plots and held-out evaluation."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

_VARIANTS = ("grpo", "dr_grpo", "dapo", "rloo")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "rl", help="GRPO fine-tuning on Ray with verified rewards (math, code, Lean)",
        description="Train a policy with GRPO on verified rewards. `proofcode rl --preset tiny` runs the "
                    "embedded model on the generated task set; `proofcode rl plot RUN_DIR` draws the curves.",
    )
    p.add_argument("--preset", choices=("tiny",), help="start from a named job (flags below override it)")
    p.add_argument("--config", help="JSON file of RLConfig fields (flags below override it)")
    p.add_argument("--model", help="checkpoint directory, or 'tiny' for the embedded model")
    p.add_argument("--prompts", help="jsonl prompt set (math/code/lean rows), or 'tiny'")
    p.add_argument("--run-dir", help="where checkpoints, metrics.csv, tb/ and curves.png go")
    p.add_argument("--steps", type=int)
    p.add_argument("--prompts-per-step", type=int)
    p.add_argument("--group-size", type=int, help="completions per prompt (G)")
    p.add_argument("--variant", choices=_VARIANTS, help="loss variant (default grpo)")
    p.add_argument("--kl-coef", type=float, help="k3 KL weight; 0 keeps no reference model")
    p.add_argument("--lr", type=float)
    p.add_argument("--max-new-tokens", type=int)
    p.add_argument("--temperature", type=float)
    p.add_argument("--format-weight", type=float, help="weight of the format reward")
    p.add_argument("--code-partial", action="store_true", help="code reward = fraction of tests passed")
    p.add_argument("--project", help="Lean project (REPL built) for Lean prompt sets")
    p.add_argument("--rollout-workers", type=int)
    p.add_argument("--reward-workers", type=int)
    p.add_argument("--checkpoint-every", type=int)
    p.add_argument("--eval-every", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--threads", type=int, help="torch threads per actor")
    p.add_argument("--address", help="Ray cluster address (default: start a local Ray)")
    p.add_argument("--resume", action="store_true", help="continue from RUN_DIR's latest checkpoint")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_train)
    sub = p.add_subparsers(dest="rl_command", metavar="SUBCOMMAND")
    plot = sub.add_parser("plot", help="write RUN_DIR/curves.png from metrics.csv")
    plot.add_argument("run_dir")
    plot.add_argument("--out", help="PNG path (default RUN_DIR/curves.png)")
    plot.set_defaults(func=cmd_plot)
    ev = sub.add_parser("eval", help="held-out accuracy of a checkpoint on a prompt set")
    ev.add_argument("--model", default="tiny", help="checkpoint directory, or 'tiny'")
    ev.add_argument("--prompts", default="tiny", help="jsonl prompt set, or 'tiny' (its held-out split)")
    ev.add_argument("--n", type=int, default=300, help="number of held-out tasks")
    ev.add_argument("--max-new-tokens", type=int, help="default: the tiny preset's")
    ev.add_argument("--pass-k", type=int, default=0, metavar="K",
                    help="also report pass@K of K samples at --temperature (what GRPO's groups can find)")
    ev.add_argument("--temperature", type=float, default=1.0, help="sampling temperature for --pass-k")
    ev.set_defaults(func=cmd_eval)


def build_config(args: argparse.Namespace):
    """RLConfig from --preset/--config and the flags; pydantic validates it here, at the edge."""
    from core_model.grpo import GRPOConfig

    from .rl.config import RLConfig, tiny_preset

    base = tiny_preset() if args.preset == "tiny" else RLConfig()
    fields = base.model_dump()
    if args.config:
        for key, value in json.loads(Path(args.config).read_text()).items():  # nested sections merge
            fields[key] = {**fields[key], **value} if isinstance(fields.get(key), dict) else value
    flat = {
        "model": args.model, "prompts": args.prompts, "run_dir": args.run_dir, "steps": args.steps,
        "prompts_per_step": args.prompts_per_step, "lr": args.lr, "rollout_workers": args.rollout_workers,
        "reward_workers": args.reward_workers, "checkpoint_every": args.checkpoint_every,
        "eval_every": args.eval_every, "seed": args.seed, "threads": args.threads, "address": args.address,
    }
    fields.update({k: v for k, v in flat.items() if v is not None})
    fields["resume"] = bool(args.resume)
    fields["progress"] = not args.no_progress
    grpo = dict(fields["grpo"])
    if args.variant:
        grpo = GRPOConfig.preset(args.variant, group_size=grpo["group_size"]).model_dump()
    for key, value in (("group_size", args.group_size), ("kl_coef", args.kl_coef)):
        if value is not None:
            grpo[key] = value
    fields["grpo"] = grpo
    for key, value in (("max_new_tokens", args.max_new_tokens), ("temperature", args.temperature)):
        if value is not None:
            fields["sampling"][key] = value
    for key, value in (("format_weight", args.format_weight), ("lean_project", args.project)):
        if value is not None:
            fields["reward"][key] = value
    if args.code_partial:
        fields["reward"]["code_partial"] = True
    from pydantic import ValidationError

    try:
        return RLConfig(**fields)
    except ValidationError as exc:  # one line per bad field, without pydantic's URLs
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'config'}: {e['msg']}" for e in exc.errors())
        raise ValueError(problems) from None


def cmd_train(args: argparse.Namespace) -> int:
    from .rl.loop import run_rl

    result = run_rl(build_config(args))
    print(f"held-out accuracy: start {result['start_acc']:.3f} -> end {result['end_acc']:.3f} "
          f"({result['end_acc'] - result['start_acc']:+.3f}); curves: {result['plot']}")
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from .rl.metrics import plot_run

    print(plot_run(args.run_dir, args.out))
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from .rl.config import RLConfig, tiny_preset
    from .rl.evaluate import heldout_accuracy, pass_at_k
    from .rl.loop import load_prompt_set
    from .rl.policy import load_policy
    from .rl.rewards import RewardFn

    config = RLConfig(model=args.model, prompts=args.prompts, eval_size=args.n)
    _, heldout = load_prompt_set(config)
    model, tokenizer = load_policy(config.model_dir(), threads=2)
    sampling = tiny_preset().sampling
    if args.max_new_tokens:
        sampling = sampling.model_copy(update={"max_new_tokens": args.max_new_tokens})
    reward_fn = RewardFn(config.reward)
    acc = heldout_accuracy(model, tokenizer, heldout, reward_fn, sampling)
    print(f"held-out accuracy: {acc:.3f} ({len(heldout)} tasks)")
    if args.pass_k:
        sampled = sampling.model_copy(update={"temperature": args.temperature})
        pk, mean = pass_at_k(model, tokenizer, heldout, reward_fn, sampled, args.pass_k)
        print(f"pass@{args.pass_k} at T={args.temperature:g}: {pk:.3f}; mean sampled accuracy {mean:.3f}")
    return 0
