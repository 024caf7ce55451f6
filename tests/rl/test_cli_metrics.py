"""`proofcode rl` CLI edges, metrics CSV/TensorBoard, plot, checkpoint files."""
from __future__ import annotations

import json
import re

import torch

from workers.cli import main
from workers.rl.checkpoint import latest_checkpoint, list_checkpoints, load_trainer_state, save_checkpoint
from workers.rl.metrics import MetricsLog, read_metrics

torch.set_num_threads(1)


def test_metrics_csv_tensorboard_and_plot(tmp_path, capsys):
    log = MetricsLog(tmp_path)
    for step in range(1, 4):
        log.log({"step": step, "reward_mean": 0.1 * step, "pass_rate": 0.1 * step, "kl": 0.0, "step_s": 1.5})
    log.close()
    assert [r["reward_mean"] for r in read_metrics(tmp_path / "metrics.csv")] == [0.1, 0.2, 0.3]
    assert list((tmp_path / "tb").iterdir())  # TensorBoard event file
    assert main(["rl", "plot", str(tmp_path)]) == 0
    assert (tmp_path / "curves.png").read_bytes()[:4] == b"\x89PNG"
    # resuming after step 2 drops the rows of later steps, which will be recomputed
    MetricsLog(tmp_path, resume_after=2, tensorboard=False)
    assert [r["step"] for r in read_metrics(tmp_path / "metrics.csv")] == [1, 2]


def test_plot_of_a_directory_without_metrics_is_a_clear_error(tmp_path, capsys):
    assert main(["rl", "plot", str(tmp_path)]) == 2
    assert "has no metrics.csv" in capsys.readouterr().err


def test_bad_prompt_set_and_lean_without_project_fail_before_starting_ray(tmp_path, capsys, shared_fixtures):
    assert main(["rl", "--prompts", str(tmp_path / "nope.jsonl")]) == 2
    assert "no such file" in capsys.readouterr().err
    from workers.rl.config import RLConfig
    from workers.rl.loop import load_prompt_set

    try:
        load_prompt_set(RLConfig(prompts=str(shared_fixtures / "lean" / "minif2f" / "minif2f.jsonl")))
    except ValueError as exc:
        assert "--project" in str(exc)
    else:
        raise AssertionError("a Lean prompt set without --project must be refused")


def test_checkpoints_are_atomic_and_pruned(tmp_path):
    def save_model(d):
        (d / "model.safetensors").write_bytes(b"weights")

    for step in (1, 2, 3):
        save_checkpoint(tmp_path, step, save_model, {"cursor": step * 4}, keep=2)
    (tmp_path / "checkpoints" / ".tmp_step_000004_1").mkdir()  # a save killed half-way
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step_000002", "step_000003"]
    assert load_trainer_state(latest_checkpoint(tmp_path)) == {"cursor": 12, "step": 3}


def test_eval_of_the_embedded_checkpoint(capsys):
    assert main(["rl", "eval", "--n", "20", "--pass-k", "2"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("held-out accuracy: ") and "(20 tasks)" in out
    pk, mean = (float(x) for x in re.fullmatch(r"pass@2 at T=1: (\S+); mean sampled accuracy (\S+)",
                                                  out.splitlines()[1]).groups())
    assert 0.0 <= mean <= pk <= 1.0


def test_config_flags_reach_the_job(tmp_path):
    from workers.rl_cli import build_config
    from workers.cli import build_parser

    cfg_file = tmp_path / "job.json"
    cfg_file.write_text(json.dumps({"steps": 7, "reward": {"timeout_s": 3.0}}))
    args = build_parser().parse_args(["rl", "--preset", "tiny", "--config", str(cfg_file), "--variant", "dapo",
                                      "--group-size", "4", "--max-new-tokens", "9", "--project", str(tmp_path)])
    cfg = build_config(args)
    assert cfg.steps == 7 and cfg.reward.timeout_s == 3.0 and cfg.reward.lean_project == str(tmp_path)
    assert cfg.grpo.clip_eps_high == 0.28 and cfg.grpo.group_size == 4 and cfg.sampling.max_new_tokens == 9
