"""Plots people would rather look at than read: the learning curve of a run."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from robotrl.logger import read_metrics


def plot_learning_curve(run_dir: Path) -> Path:
    """curve.png: training episode return and evaluation points vs environment steps."""
    rows = read_metrics(Path(run_dir) / "metrics.csv")
    fig, ax = plt.subplots(figsize=(7, 4.2))
    train = [(r["step"], r["charts/episodic_return_mean"]) for r in rows if "charts/episodic_return_mean" in r]
    evals = [(r["step"], r["eval/return_mean"]) for r in rows if "eval/return_mean" in r]
    if train:
        ax.plot(*zip(*train, strict=True), label="training episodes (last 100)")
    if evals:
        ax.plot(*zip(*evals, strict=True), "o-", label="deterministic evaluation")
    ax.set_xlabel("environment steps")
    ax.set_ylabel("episode return")
    ax.set_title(Path(run_dir).name)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    out = Path(run_dir) / "curve.png"
    tmp = out.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(out)
    return out
