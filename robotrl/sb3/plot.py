"""The comparison plots: each side's evaluation return over steps, mean over seeds and a 95% band; one
comparison (`robotrl compare`'s curves.png) or several overlaid on one env (`robotrl plot REPORT.json ...`:
SAC's 300k steps beside PPO's 1M on HalfCheetah)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from robotrl.core.stats import mean_ci95

COLORS = {"ours": "tab:blue", "sb3": "tab:orange"}


def _aggregate(curves: list[list[tuple[int, float]]]) -> tuple[list[int], list[float], list[float], list[float]]:
    """Mean and 95% t-interval at the steps every seed evaluated at."""
    common = sorted(set.intersection(*(set(int(s) for s, _ in c) for c in curves))) if curves else []
    lookup = [{int(s): r for s, r in c} for c in curves]
    means, lows, highs = [], [], []
    for step in common:
        mean, (lo, hi) = mean_ci95([d[step] for d in lookup])
        means.append(mean)
        lows.append(lo)
        highs.append(hi)
    return common, means, lows, highs


def _draw(ax: Any, report: dict[str, Any], prefix: str, style: str) -> list[str]:
    """One report's sides onto `ax`; the labels drawn."""
    labels = []
    for side in ("ours", "sb3"):
        if side not in report:
            continue
        steps, means, lows, highs = _aggregate(report[side]["curves"])
        if not steps:
            continue
        block = report[side]
        label = (f"{prefix}{side}: {block['mean']:.1f} [{block['ci95'][0]:.1f}, {block['ci95'][1]:.1f}], "
                 f"{block['steps_per_s']:.0f} steps/s")
        ax.plot(steps, means, style, color=COLORS[side], label=label, markersize=3)
        ax.fill_between(steps, lows, highs, color=COLORS[side], alpha=0.2)
        labels.append(label)
    return labels


def plot_comparison(report: dict[str, Any], out: Path) -> Path:
    """Write the PNG next to the report; sides missing from the report are left out."""
    fig, ax = plt.subplots(figsize=(7, 4.2))
    _draw(ax, report, "", "o-")
    ax.set_title(f"{report['algo']} on {report['env']}, {len(report['seeds'])} seeds, mean and 95% CI")
    return _save(fig, ax, out)


STYLES = ("o-", "s--", "^:", "d-.")


def reports_figure(reports: list[dict[str, Any]]) -> tuple[Any, list[str]]:
    """Several comparison reports of one env on one axis (each algorithm its line style, each side its
    colour), labelled with their final return, interval, budget and seeds; (the figure, the labels)."""
    envs = sorted({r["env"] for r in reports})
    if len(envs) != 1:
        raise ValueError(f"reports of one env expected, got {', '.join(envs)}")
    fig, ax = plt.subplots(figsize=(8, 4.8))
    labels = []
    for i, report in enumerate(reports):
        prefix = f"{report['algo']} {report['steps']:,} steps x {len(report['seeds'])} seeds, "
        labels += _draw(ax, report, prefix, STYLES[i % len(STYLES)])
    ax.set_title(f"{envs[0]}: evaluation return, mean and 95% CI over seeds")
    return fig, labels


def plot_reports(reports: list[dict[str, Any]], out: Path) -> tuple[Path, list[str]]:
    """reports_figure written to `out`; (the PNG, the labels drawn)."""
    fig, labels = reports_figure(reports)
    return _save(fig, fig.axes[0], out), labels


def _save(fig: Any, ax: Any, out: Path) -> Path:
    ax.set_xlabel("environment steps")
    ax.set_ylabel("evaluation return (deterministic)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(out)
    return out
