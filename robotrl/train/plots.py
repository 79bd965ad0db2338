"""Plots people would rather look at than read, written into the run folder from metrics.csv.

`curve.png`: episode return vs environment steps, training episodes and deterministic evaluations
(with their spread). `losses.png`: every `losses/*` column of the agent (entropy included) and the
policy's action std, one panel each, so a collapsing entropy or an exploding value loss shows at once.
Each plot is built by a function that returns the Figure, so tests read back what was drawn.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import EngFormatter, MaxNLocator

from policies.checkpoint import atomic_write_bytes
from robotrl.train.logger import read_metrics

Rows = list[dict[str, float]]
TRAIN_RETURN, EVAL_RETURN, EVAL_STD = "charts/episodic_return_mean", "eval/return_mean", "eval/return_std"
EXTRA_DIAGNOSTICS = ("charts/action_std",)


def _series(rows: Rows, key: str) -> tuple[list[float], list[float]]:
    points = [(r["step"], r[key]) for r in rows if key in r and not math.isnan(r[key])]
    return [p[0] for p in points], [p[1] for p in points]


def _steps_axis(ax: Axes) -> None:
    ax.set_xlabel("environment steps")
    ax.xaxis.set_major_locator(MaxNLocator(5))
    ax.xaxis.set_major_formatter(EngFormatter(sep=""))  # 250k, 1.5M: raw step counts overlap
    ax.grid(alpha=0.3)


def learning_curve_figure(rows: Rows, title: str = "") -> Figure:
    """Training return (mean of the last 100 episodes) and evaluation return ± std vs steps."""
    fig = Figure(figsize=(7, 4.2))
    ax = fig.add_subplot()
    steps, train = _series(rows, TRAIN_RETURN)
    if steps:
        ax.plot(steps, train, label="training episodes (mean of last 100)")
    steps, evals = _series(rows, EVAL_RETURN)
    if steps:
        std = [r.get(EVAL_STD, 0.0) for r in rows if EVAL_RETURN in r and not math.isnan(r[EVAL_RETURN])]
        ax.errorbar(steps, evals, yerr=std, fmt="o-", capsize=3, label="deterministic evaluation (± std)")
    _steps_axis(ax)
    ax.set_ylabel("episode return")
    ax.set_title(title)
    if ax.has_data():
        ax.legend(loc="lower right")
    fig.tight_layout()
    return fig


def losses_figure(rows: Rows, title: str = "") -> Figure:
    """One panel per loss column (`losses/*`, in logging order) plus the action std, vs steps."""
    keys: list[str] = []
    for row in rows:
        keys.extend(k for k in row if (k.startswith("losses/") or k in EXTRA_DIAGNOSTICS) and k not in keys)
    cols = min(3, max(len(keys), 1))
    nrows = max(math.ceil(len(keys) / cols), 1)
    fig = Figure(figsize=(4.0 * cols, 2.8 * nrows))
    for i, key in enumerate(keys):
        ax = fig.add_subplot(nrows, cols, i + 1)
        ax.plot(*_series(rows, key))
        ax.set_title(key.split("/", 1)[1].replace("_", " "))
        _steps_axis(ax)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def _save(fig: Figure, path: Path) -> Path:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def plot_learning_curve(run_dir: Path) -> Path:
    """curve.png of a run folder."""
    run_dir = Path(run_dir)
    return _save(learning_curve_figure(read_metrics(run_dir / "metrics.csv"), run_dir.name), run_dir / "curve.png")


def plot_losses(run_dir: Path) -> Path:
    """losses.png of a run folder."""
    run_dir = Path(run_dir)
    return _save(losses_figure(read_metrics(run_dir / "metrics.csv"), run_dir.name), run_dir / "losses.png")


def plot_run(run_dir: Path) -> list[Path]:
    """Every plot of a run folder."""
    return [plot_learning_curve(run_dir), plot_losses(run_dir)]
