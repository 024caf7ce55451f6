"""Pretraining / SFT loop: causal LM loss + MoE balance loss, AdamW, warmup + cosine, grad clipping,
HF-format checkpoints with optimizer/scheduler/data state so a stopped run resumes exactly."""
from __future__ import annotations

import json
import logging
import math
import sys
import time
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field, model_validator

from .data import STDLIB, Batches, build_examples, load_records
from .model import RoutingStats
from .tokenizer import Tokenizer, load_tokenizer, train_bpe

log = logging.getLogger("proofcode.core_model")

TRAINER_STATE = "trainer_state.pt"
TRAIN_LOG = "train_log.jsonl"


class TrainConfig(BaseModel):
    """One training job. Give `model` (HF config.json fields) to train from scratch, or `init_from` to continue."""

    model_config = ConfigDict(extra="forbid")

    output_dir: str = "runs/train"
    data: str = Field(STDLIB, description="jsonl file ({'text'} or {'prompt','completion'} lines) or 'stdlib'")
    data_format: Literal["auto", "text", "sft"] = "auto"
    max_data_bytes: int | None = Field(3_000_000, description="read at most this much data; None: all")
    model: dict | None = Field(None, description="config.json fields of a new model (model_type, hidden_size, ...)")
    init_from: str | None = Field(None, description="checkpoint directory to start from (SFT / continued pretraining)")
    tokenizer: str | None = Field(None, description="tokenizer.json or its directory; default: init_from's, else a new BPE")
    tokenizer_vocab_size: int = Field(2048, ge=300, description="vocab size of the BPE trained when no tokenizer is given")
    seq_len: int = Field(128, ge=2)
    batch_size: int = Field(16, ge=1)
    grad_accum_steps: int = Field(1, ge=1)
    max_steps: int = Field(200, ge=1)
    lr: float = Field(1e-3, gt=0)
    min_lr_ratio: float = Field(0.1, ge=0, le=1, description="the cosine decays to lr * min_lr_ratio")
    warmup_steps: int = Field(20, ge=0)
    weight_decay: float = Field(0.1, ge=0)
    betas: tuple[float, float] = (0.9, 0.95)
    grad_clip: float | None = Field(1.0, description="max global grad norm; None: no clipping")
    aux_loss_coef: float = Field(1.0, ge=0, description="weight of the MoE balance loss (RoutingStats.aux_loss())")
    routing_bias_rate: float = Field(1e-3, ge=0, description="DeepSeek-V3 aux-loss-free bias update speed")
    save_every: int = Field(0, ge=0, description="checkpoint every N steps (0: only at the end)")
    log_every: int = Field(10, ge=1)
    seed: int = 0
    dtype: Literal["float32", "bfloat16"] = "float32"
    autocast: Literal["none", "bfloat16"] = Field(
        "none", description="bfloat16: mixed precision, matmuls in bf16 under torch.autocast while weights and "
        "AdamW state stay in `dtype` (bf16 tensor cores on GPUs, AMX on recent Xeons)")
    device: str = "cpu"
    num_threads: int | None = Field(None, ge=1, description="torch intra-op threads; None: torch's default")
    resume: bool = Field(False, description="continue from output_dir's trainer_state.pt when present")
    progress: bool = True

    @model_validator(mode="after")
    def _one_model_source(self):
        if (self.model is None) == (self.init_from is None):
            raise ValueError("give exactly one of 'model' (a new model's config) or 'init_from' (a checkpoint dir)")
        return self


def lr_lambda(step: int, warmup_steps: int, max_steps: int, min_lr_ratio: float) -> float:
    """Multiplier of the peak lr at `step`: linear warmup, then cosine down to min_lr_ratio."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, max_steps - warmup_steps))
    return min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def make_optimizer(model: torch.nn.Module, config: TrainConfig) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices only (norm gains and biases are not decayed), as in nanoGPT."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": config.weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=config.lr, betas=config.betas)


def resolve_tokenizer(config: TrainConfig, records: list[dict]) -> Tokenizer:
    """The configured tokenizer, the checkpoint's, or a BPE trained on the training data itself."""
    if config.tokenizer:
        return load_tokenizer(config.tokenizer)
    if config.init_from:
        return load_tokenizer(config.init_from)
    texts = (r.get("text") or (r.get("prompt", "") + r.get("completion", "")) for r in records)
    return train_bpe(texts, config.tokenizer_vocab_size)


def build_model(config: TrainConfig, tokenizer: Tokenizer, checkpoint: Path | None):
    """Load `checkpoint` (resume) or `init_from`, or build a fresh model sized to the tokenizer."""
    from .checkpoint import load_pretrained
    from .model import ModelConfig, Transformer

    dtype = getattr(torch, config.dtype)
    source = checkpoint or (Path(config.init_from) if config.init_from else None)
    if source is not None:
        model = load_pretrained(source, dtype=dtype, device=config.device)
    else:
        fields = dict(config.model)
        fields.setdefault("vocab_size", tokenizer.vocab_size)
        if fields["vocab_size"] < tokenizer.vocab_size:
            raise ValueError(
                f"model.vocab_size={fields['vocab_size']} is smaller than the tokenizer's {tokenizer.vocab_size} ids"
            )
        fields.setdefault("max_position_embeddings", max(config.seq_len, 2048))
        if tokenizer.bos_id is not None:
            fields.setdefault("bos_token_id", tokenizer.bos_id)
        if tokenizer.eos_id is not None:
            fields.setdefault("eos_token_id", tokenizer.eos_id)
        torch.manual_seed(config.seed)
        model = Transformer(ModelConfig.from_dict(fields)).to(device=config.device, dtype=dtype)
    if model.config.vocab_size < tokenizer.vocab_size:
        raise ValueError(f"{source}: the model has {model.config.vocab_size} ids but the tokenizer {tokenizer.vocab_size}")
    return model


def save_checkpoint(out: Path, model, tokenizer: Tokenizer, optimizer, scheduler, batches: Batches, state: dict) -> None:
    """HF checkpoint (config.json, model.safetensors, tokenizer) + trainer_state.pt for `resume`."""
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save(out)
    trainer_state = {
        **state,
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "data": batches.state_dict(),
        "torch_rng": torch.get_rng_state(),
    }
    tmp = out / (TRAINER_STATE + ".tmp")
    torch.save(trainer_state, tmp)
    tmp.replace(out / TRAINER_STATE)  # a run killed mid-save keeps the previous state file whole


def lm_loss(model, inputs: torch.Tensor, labels: torch.Tensor, aux_loss_coef: float,
            autocast: str = "none", routing: RoutingStats | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(total loss, LM cross-entropy) of one batch; total adds the weighted MoE balance loss. autocast
    "bfloat16" runs the forward in mixed precision (the loss is still taken in fp32); `routing` receives the
    forward's expert loads."""
    routing = RoutingStats() if routing is None else routing
    # Right padding never needs an attention mask under a causal mask: real tokens never see later pads.
    with torch.autocast(inputs.device.type, dtype=torch.bfloat16, enabled=autocast == "bfloat16"):
        logits = model(inputs, routing=routing)  # [b, s, vocab]
    ce = F.cross_entropy(logits.flatten(0, 1).float(), labels.flatten())
    aux = routing.aux_loss()
    total = ce if aux is None or aux_loss_coef == 0 else ce + aux_loss_coef * aux
    return total, ce


def train(config: TrainConfig) -> dict:
    """Run the job in `config`; returns the final metrics (step, loss, tokens, tokens_per_s, ...)."""
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    out = Path(config.output_dir).expanduser()
    resume_state = _load_resume_state(out) if config.resume else None
    if not config.resume and (out / TRAINER_STATE).is_file():
        log.warning("%s holds a checkpoint; starting over (resume=True / --resume continues it)", out)
    records = load_records(config.data, config.max_data_bytes)
    tokenizer = load_tokenizer(out) if resume_state else resolve_tokenizer(config, records)
    examples = build_examples(tokenizer, records, config.seq_len, config.data_format, source=config.data)
    pad_id = tokenizer.pad_id if tokenizer.pad_id is not None else 0
    batches = Batches(examples, config.batch_size, pad_id, seed=config.seed)
    model = build_model(config, tokenizer, out if resume_state else None)
    model.train()
    optimizer = make_optimizer(model, config)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: lr_lambda(s, config.warmup_steps, config.max_steps, config.min_lr_ratio)
    )
    state = {"step": 0, "tokens": 0, "config": config.model_dump(mode="json")}
    if resume_state:
        optimizer.load_state_dict(resume_state["optimizer"])
        scheduler.load_state_dict(resume_state["scheduler"])
        batches.load_state_dict(resume_state["data"])
        torch.set_rng_state(resume_state["torch_rng"])
        state.update(step=resume_state["step"], tokens=resume_state["tokens"])
    if config.autocast == "bfloat16":
        from core_model.precision import warn_if_emulated_bf16

        warn_if_emulated_bf16(config.device, "training with autocast: bfloat16")
    metrics = _run_steps(config, model, optimizer, scheduler, batches, state, tokenizer, out)
    save_checkpoint(out, model, tokenizer, optimizer, scheduler, batches, state)
    metrics.update(output_dir=str(out), examples=len(examples), vocab_size=tokenizer.vocab_size)
    (out / "train_metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics


def _load_resume_state(out: Path) -> dict | None:
    file = out / TRAINER_STATE
    if not file.is_file():
        return None
    return torch.load(file, map_location="cpu", weights_only=True)


def _train_step(config, model, optimizer, scheduler, batches, state) -> tuple[float, float | None]:
    """One optimizer step over grad_accum_steps micro-batches; returns (mean LM loss, grad norm)."""
    optimizer.zero_grad(set_to_none=True)
    ce_sum, grad_norm = 0.0, None
    for _ in range(config.grad_accum_steps):
        inputs, labels = batches.next()
        inputs, labels = inputs.to(config.device), labels.to(config.device)
        routing = RoutingStats()  # the last micro-batch's loads drive the V3 bias update
        total, ce = lm_loss(model, inputs, labels, config.aux_loss_coef, config.autocast, routing)
        (total / config.grad_accum_steps).backward()
        ce_sum += ce.item()
        state["tokens"] += int((labels != -100).sum())
    if config.grad_clip:
        grad_norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip))
    optimizer.step()
    scheduler.step()
    if config.routing_bias_rate:
        model.update_routing_bias(config.routing_bias_rate, routing)  # V3 aux-loss-free balancing; no-op for V2
    state["step"] += 1
    ce_value = ce_sum / config.grad_accum_steps
    if not math.isfinite(ce_value):
        raise FloatingPointError(f"loss became {ce_value} at step {state['step']}; lower lr (now {config.lr})")
    return ce_value, grad_norm


def _run_steps(config, model, optimizer, scheduler, batches, state, tokenizer, out: Path) -> dict:
    from tqdm import tqdm

    start_tokens = state["tokens"]
    bar = tqdm(total=config.max_steps, initial=state["step"], desc="train", unit="step", file=sys.stderr,
               disable=not config.progress, dynamic_ncols=True)
    out.mkdir(parents=True, exist_ok=True)
    log_file = (out / TRAIN_LOG).open("a" if state["step"] else "w")  # a new run starts a new log
    t0 = time.perf_counter()
    loss_ema = ce_value = grad_norm = None
    try:
        while state["step"] < config.max_steps:
            ce_value, grad_norm = _train_step(config, model, optimizer, scheduler, batches, state)
            loss_ema = ce_value if loss_ema is None else 0.9 * loss_ema + 0.1 * ce_value
            tok_s = (state["tokens"] - start_tokens) / max(time.perf_counter() - t0, 1e-9)
            lr = scheduler.get_last_lr()[0]
            bar.update(1)
            bar.set_postfix(loss=f"{loss_ema:.3f}", tok_s=f"{tok_s:,.0f}", lr=f"{lr:.2e}")
            if state["step"] % config.log_every == 0 or state["step"] == config.max_steps:
                entry = {"step": state["step"], "loss": ce_value, "lr": lr, "grad_norm": grad_norm,
                         "tokens": state["tokens"], "tokens_per_s": tok_s}
                log_file.write(json.dumps(entry) + "\n")
                log_file.flush()
            if config.save_every and state["step"] % config.save_every == 0 and state["step"] < config.max_steps:
                save_checkpoint(out, model, tokenizer, optimizer, scheduler, batches, state)
    finally:
        bar.close()
        log_file.close()
    elapsed = time.perf_counter() - t0
    return {
        "step": state["step"],
        "loss": ce_value,
        "loss_smoothed": loss_ema,
        "lr": scheduler.get_last_lr()[0],
        "grad_norm": grad_norm,
        "tokens": state["tokens"],
        "tokens_per_s": (state["tokens"] - start_tokens) / max(elapsed, 1e-9),
        "elapsed_s": elapsed,
    }
