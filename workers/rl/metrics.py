"""Per-step metrics to CSV and TensorBoard, and `plot_run` for the PNG of the curves."""
from __future__ import annotations

import csv
import math
from pathlib import Path

COLUMNS = (
    "step", "reward_mean", "reward_std", "pass_rate", "heldout_acc", "kl", "entropy", "clip_frac",
    "response_len", "tokens_per_s", "samples_per_s", "step_s", "learner_s", "loss", "grad_norm",
    "groups_dropped", "policy_version", "reward_timeouts", "lr",
)
PLOTTED = ("reward_mean", "pass_rate", "heldout_acc", "kl", "entropy", "clip_frac", "response_len", "tokens_per_s", "step_s")


class MetricsLog:
    """Appends one row per step to RUN_DIR/metrics.csv (and TensorBoard events in RUN_DIR/tb)."""

    def __init__(self, run_dir: str | Path, resume_after: int | None = None, tensorboard: bool = True):
        self.path = Path(run_dir) / "metrics.csv"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        rows = read_metrics(self.path) if resume_after is not None and self.path.is_file() else []
        # On resume, drop rows of steps after the checkpoint: they are recomputed identically.
        rows = [r for r in rows if resume_after is not None and r["step"] <= resume_after]
        with self.path.open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=COLUMNS)
            writer.writeheader()
            for r in rows:
                writer.writerow({k: _fmt(r.get(k)) for k in COLUMNS})
        self.tb = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(Path(run_dir) / "tb"), purge_step=(resume_after or 0) + 1)
            except ImportError:  # tensorboard not installed: CSV only
                self.tb = None

    def log(self, row: dict) -> None:
        with self.path.open("a", newline="") as fh:
            csv.DictWriter(fh, fieldnames=COLUMNS, extrasaction="ignore").writerow({k: _fmt(row.get(k)) for k in COLUMNS})
        if self.tb is not None:
            for k, v in row.items():
                if k != "step" and isinstance(v, (int, float)) and not math.isnan(v):
                    self.tb.add_scalar(f"rl/{k}", v, row["step"])
            self.tb.flush()

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


def _fmt(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    return f"{v:.6g}" if isinstance(v, float) else str(v)


def read_metrics(path: str | Path) -> list[dict]:
    """Rows of a metrics.csv as dicts of floats (missing cells are absent); step as int."""
    rows = []
    with Path(path).open(newline="") as fh:
        for raw in csv.DictReader(fh):
            row = {k: float(v) for k, v in raw.items() if v not in ("", None)}
            row["step"] = int(row["step"])
            rows.append(row)
    return rows


def plot_run(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write RUN_DIR/curves.png (or `out`): one panel per metric over steps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(run_dir) / "metrics.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir} has no metrics.csv; pass the --run-dir of a `proofcode rl` run")
    rows = read_metrics(path)
    if not rows:
        raise ValueError(f"{path} has no rows yet; the run has not finished a step")
    keys = [k for k in PLOTTED if any(k in r for r in rows)]
    cols = 3
    fig, axes = plt.subplots(math.ceil(len(keys) / cols), cols, figsize=(12, 3 * math.ceil(len(keys) / cols)),
                             squeeze=False)
    for ax, key in zip(axes.flat, keys):
        pts = [(r["step"], r[key]) for r in rows if key in r]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o" if key == "heldout_acc" else None, ms=3)
        ax.set_title(key)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(keys):]:
        ax.axis("off")
    fig.tight_layout()
    out = Path(out) if out else Path(run_dir) / "curves.png"
    fig.savefig(out, dpi=80)
    plt.close(fig)
    return out
