"""The comparison plot: each side's evaluation return over steps, mean over seeds and a 95% band."""

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


def plot_comparison(report: dict[str, Any], out: Path) -> Path:
    """Write the PNG next to the report; sides missing from the report are left out."""
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for side in ("ours", "sb3"):
        if side not in report:
            continue
        steps, means, lows, highs = _aggregate(report[side]["curves"])
        if not steps:
            continue
        block = report[side]
        label = (f"{side}: {block['mean']:.1f} [{block['ci95'][0]:.1f}, {block['ci95'][1]:.1f}], "
                 f"{block['steps_per_s']:.0f} steps/s")
        ax.plot(steps, means, "o-", color=COLORS[side], label=label, markersize=3)
        ax.fill_between(steps, lows, highs, color=COLORS[side], alpha=0.2)
    ax.set_xlabel("environment steps")
    ax.set_ylabel("evaluation return (deterministic)")
    ax.set_title(f"{report['algo']} on {report['env']}, {len(report['seeds'])} seeds, mean and 95% CI")
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
