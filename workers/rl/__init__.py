"""GRPO fine-tuning on Ray with verified rewards (`proofcode rl`); see docs/rl.md.

    from workers.rl.config import tiny_preset
    from workers.rl.loop import run_rl
    result = run_rl(tiny_preset(steps=50))   # {'start_acc', 'end_acc', 'run_dir', 'plot', ...}

Plain classes (`Learner`, `RolloutWorker`, `RewardFn`) hold the logic; `actors.py` wraps them for Ray.
"""
