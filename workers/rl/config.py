"""One config object per RL job: validated at the CLI edge, passed down to the loop and actors."""
from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field, model_validator

from core_model.grpo import GRPOConfig

from .rewards import RewardConfig


class SamplingConfig(BaseModel):
    """How rollout actors sample (passed to `core_model.generate`)."""

    max_new_tokens: int = Field(16, ge=1)
    temperature: float = Field(1.0, ge=0)
    top_p: float = Field(1.0, gt=0, le=1)
    top_k: int = Field(0, ge=0)
    stop: list[str] = Field(default_factory=list)


class RLConfig(BaseModel):
    """Everything one `proofcode rl` run needs."""

    model: str = Field("tiny", description="checkpoint directory, or 'tiny' for the embedded model")
    prompts: str = Field("tiny", description="jsonl prompt set, or 'tiny' for the generated task set")
    run_dir: Path = Path("runs/rl")
    steps: int = Field(100, ge=1)
    prompts_per_step: int = Field(16, ge=1)
    heldout_fraction: float = Field(0.1, ge=0, lt=1)
    eval_every: int = Field(0, ge=0, description="held-out eval every N steps (0: only at start and end)")
    eval_size: int = Field(200, ge=1)
    lr: float = Field(1e-4, gt=0)
    warmup_steps: int = Field(0, ge=0)
    weight_decay: float = 0.0
    max_grad_norm: float = Field(1.0, gt=0)
    updates_per_step: int = Field(1, ge=1, description="gradient steps on each rollout batch (mu)")
    aux_loss_coef: float = Field(0.0, ge=0, description="MoE load-balancing loss weight")
    routing_bias_rate: float = Field(0.0, ge=0, description="DeepSeek-V3 aux-loss-free bias update rate")
    grpo: GRPOConfig = Field(default_factory=GRPOConfig)
    sampling: SamplingConfig = Field(default_factory=SamplingConfig)
    reward: RewardConfig = Field(default_factory=RewardConfig)
    rollout_workers: int = Field(1, ge=1)
    reward_workers: int = Field(1, ge=1)
    overlap: bool = Field(False, description="generate step k+1 while the learner trains on step k (one step off-policy)")
    rollout_chunks: int = Field(2, ge=1, description="prompt chunks per step, so rewards overlap generation")
    checkpoint_every: int = Field(1, ge=1, description="1: a kill -9 loses at most the step in flight")
    keep_checkpoints: int = Field(2, ge=1)
    seed: int = 0
    threads: int = Field(1, ge=1, description="torch threads per actor")
    address: str | None = Field(None, description="Ray cluster address; None starts a local Ray")
    resume: bool = False
    progress: bool = True

    @model_validator(mode="after")
    def _check(self) -> "RLConfig":
        if self.prompts != "tiny" and not Path(self.prompts).expanduser().is_file():
            raise ValueError(f"--prompts {self.prompts}: no such file; pass a jsonl prompt set or 'tiny'")
        if self.model != "tiny" and not (Path(self.model).expanduser() / "config.json").is_file():
            raise ValueError(f"--model {self.model}: not a checkpoint directory (no config.json); pass one or 'tiny'")
        return self

    def model_dir(self) -> Path:
        if self.model == "tiny":
            from core_model import EMBEDDED_TINY_PATH

            return EMBEDDED_TINY_PATH
        return Path(self.model).expanduser()


def tiny_preset(**overrides) -> RLConfig:
    """`proofcode rl --preset tiny`: the embedded model on the generated task set, sized for 2 CPU cores."""
    base = dict(
        model="tiny", prompts="tiny", steps=120, prompts_per_step=32, lr=1e-4, warmup_steps=0,
        grpo=GRPOConfig(group_size=8, kl_coef=0.0, aggregation="token_mean"),
        sampling=SamplingConfig(max_new_tokens=24, temperature=1.0),
        reward=RewardConfig(correct_weight=1.0, format_weight=0.0, timeout_s=5.0),
        eval_size=300, checkpoint_every=1, run_dir=Path("runs/rl-tiny"), overlap=True,
    )
    base.update(overrides)
    return RLConfig(**base)
