"""`proofcode train` and `proofcode generate`."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register(subparsers) -> None:
    """Add the `train` and `generate` subcommands to the proofcode parser."""
    from .presets import TRAIN_PRESETS

    p = subparsers.add_parser(
        "train",
        help="pretrain or SFT a model on jsonl text (or the tiny preset on the Python stdlib)",
        description="Train a DeepSeek-style model. Fields come from --preset, then --config, then flags/--set.",
    )
    p.add_argument("--config", type=Path, help="TrainConfig as .json (or .yaml/.yml when pyyaml is installed)")
    p.add_argument("--preset", choices=sorted(TRAIN_PRESETS), help="start from a named job, e.g. 'tiny'")
    p.add_argument("--output-dir", help="where the checkpoint, tokenizer and logs go")
    p.add_argument("--data", help="jsonl of {'text'} or {'prompt','completion'} lines, or 'stdlib'")
    p.add_argument("--init-from", help="checkpoint directory to start from (SFT / continued pretraining)")
    p.add_argument("--max-steps", type=int, help="optimizer steps")
    p.add_argument("--resume", action="store_true", help="continue from --output-dir's last checkpoint")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override any TrainConfig field (VALUE parsed as JSON; model.hidden_size=64 reaches into model)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train)

    g = subparsers.add_parser(
        "generate",
        help="sample completions from a checkpoint",
        description="Load a checkpoint directory (config.json, model.safetensors, tokenizer.json) and complete prompts.",
    )
    g.add_argument("--model", required=True, help="checkpoint directory")
    g.add_argument("--tokenizer", help="tokenizer.json or its directory (default: the model directory)")
    g.add_argument("--prompt", action="append", required=True, help="prompt text; repeat for a batch")
    g.add_argument("--max-new-tokens", type=int, default=64)
    g.add_argument("--temperature", type=float, default=0.0, help="0: greedy")
    g.add_argument("--top-p", type=float, default=1.0)
    g.add_argument("--top-k", type=int, default=0, help="0: no top-k cut")
    g.add_argument("--stop", action="append", default=[], help="stop string; repeatable")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--dtype", choices=["float32", "bfloat16", "float16"], default="float32")
    g.add_argument("--device", default="cpu")
    g.add_argument("--json", action="store_true", help="one JSON object per completion instead of plain text")
    g.add_argument("--decode", choices=list(DECODE_CHOICES), default="auto",
                   help="CUDA decode step: auto (Triton attention + expert GEMV when Triton is there), eager (the "
                        "model's modules), compile (auto + torch.compile: ~10 s more per new batch/length), fp8 / "
                        "compile-fp8 (routed experts in e4m3, Hopper or later: 1.3-1.5x at batch 32 on an H200; "
                        "see docs/core_model.md)")
    g.set_defaults(func=cmd_generate)


# `--decode` names -> DecodeKernels fields (core_model.cuda_graph)
DECODE_CHOICES = {"auto": {}, "eager": {"attention": "torch", "experts": "grouped"}, "compile": {"compile": "regional"},
                  "fp8": {"experts": "fp8"}, "compile-fp8": {"compile": "regional", "experts": "fp8"}}


def decode_kernels(name: str):
    """The DecodeKernels of a `--decode` choice."""
    from .cuda_graph import DecodeKernels

    return DecodeKernels(**DECODE_CHOICES[name])


def read_config_file(path: Path) -> dict:
    """Fields of a .json or .yaml config file; errors name the file and what is wrong."""
    if not path.is_file():
        raise FileNotFoundError(f"config file {path} does not exist")
    text = path.read_text(encoding="utf-8")
    if path.suffix in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError as exc:
            raise RuntimeError(f"{path} is YAML but pyyaml is not installed: pip install pyyaml, or use JSON") from exc
        data = yaml.safe_load(text)
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"config file {path} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError(f"config file {path} must hold a mapping of TrainConfig fields, got {type(data).__name__}")
    return data


def apply_override(fields: dict, item: str) -> None:
    """Set `KEY=VALUE` (dotted keys reach into nested dicts; VALUE is JSON, else a plain string)."""
    key, sep, raw = item.partition("=")
    if not sep or not key:
        raise ValueError(f"--set {item!r}: expected KEY=VALUE, e.g. --set lr=3e-4")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    *parents, leaf = key.split(".")
    target = fields
    for part in parents:
        target = target.setdefault(part, {})
        if not isinstance(target, dict):
            raise ValueError(f"--set {item!r}: {part!r} is not a mapping")
    target[leaf] = value


def build_train_config(args: argparse.Namespace):
    """Merge --preset, --config and flags into one validated TrainConfig."""
    from pydantic import ValidationError

    from .presets import train_preset
    from .training import TrainConfig

    if not args.preset and not args.config:
        raise ValueError("give --config FILE or --preset NAME (e.g. --preset tiny)")
    fields = train_preset(args.preset) if args.preset else {}
    if args.config:
        fields.update(read_config_file(args.config))
    flags = {"output_dir": args.output_dir, "data": args.data, "init_from": args.init_from, "max_steps": args.max_steps}
    fields.update({k: v for k, v in flags.items() if v is not None})
    if args.init_from:
        fields.pop("model", None)  # continuing a checkpoint: its own config.json defines the model
    if args.resume:
        fields["resume"] = True
    if args.no_progress:
        fields["progress"] = False
    for item in args.overrides:
        apply_override(fields, item)
    try:
        return TrainConfig(**fields)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'config'}: {e['msg']}" for e in exc.errors())
        raise ValueError(f"invalid training config: {problems}") from None


def cmd_train(args: argparse.Namespace) -> int:
    from .training import train

    config = build_train_config(args)
    metrics = train(config)
    print(json.dumps(metrics, indent=2))
    print(f"saved to {metrics['output_dir']}; try: proofcode generate --model {metrics['output_dir']} --prompt 'def '",
          file=sys.stderr)
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    import torch

    from .checkpoint import load_pretrained
    from .generation import GenerationConfig, generate
    from .tokenizer import load_tokenizer


    model_dir = Path(args.model).expanduser()
    if not model_dir.is_dir():
        raise FileNotFoundError(f"--model {model_dir} is not a directory (expected a checkpoint with config.json)")
    tokenizer = load_tokenizer(args.tokenizer or model_dir)
    model = load_pretrained(model_dir, dtype=getattr(torch, args.dtype), device=args.device)
    model.eval()
    config = GenerationConfig(
        max_new_tokens=args.max_new_tokens,
        temperature=args.temperature,
        top_p=args.top_p,
        top_k=args.top_k,
        stop=list(args.stop),
        seed=args.seed,
        decode_kernels=decode_kernels(args.decode),
    )
    completions = generate(model, tokenizer, list(args.prompt), config)
    for prompt, c in zip(args.prompt, completions):
        if args.json:
            print(json.dumps({"prompt": prompt, "text": c.text, "finish_reason": c.finish_reason,
                              "token_ids": list(c.token_ids)}, ensure_ascii=False))
        else:
            print(prompt + c.text)
            if len(args.prompt) > 1:
                print("-" * 40)
    return 0
