"""Plots of a deploy run from its ticks.npz: timing histograms and the commands over time."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np


def plot_deploy(out_dir: Path) -> list[Path]:
    """timing.png (latency, inference, lateness histograms) and actions.png; returns the paths."""
    out_dir = Path(out_dir)
    data = np.load(out_dir / "ticks.npz")
    rate = float(data["rate_hz"])
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for ax, key in zip(axes, ("latency_us", "inference_us", "lateness_us"), strict=True):
        v = data[key][~np.isnan(data[key])]
        if v.size:
            hi = np.percentile(v, 99.9)
            ax.hist(np.clip(v, None, hi), bins=80, color="tab:blue")
            ax.axvline(np.median(v), color="k", ls="--", lw=1, label=f"p50 {np.median(v):.1f}")
            ax.axvline(np.percentile(v, 99), color="tab:red", ls="--", lw=1, label=f"p99 {np.percentile(v, 99):.1f}")
            ax.legend()
        ax.set_xlabel(f"{key.replace('_us', '')} (µs, clipped at p99.9)")
        ax.set_yscale("log")
    axes[0].set_ylabel("ticks")
    fig.suptitle(f"{len(data['lateness_us'])} ticks at {rate:g} Hz, {int(data['overrun'].sum())} overruns")
    fig.tight_layout()
    timing = out_dir / "timing.png"
    fig.savefig(timing, dpi=110)
    plt.close(fig)

    actions = data["actions"]
    t = data["tick"] / rate
    fig, ax = plt.subplots(figsize=(10, 3.8))
    for j in range(actions.shape[1]):
        ax.plot(t, actions[:, j], lw=0.8, label=f"action[{j}]")
    safe = np.flatnonzero(data["safe"])
    if safe.size:
        ax.plot(t[safe], np.zeros(safe.size), "rx", ms=4, label="safe action")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("command")
    ax.legend(loc="upper right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    acts = out_dir / "actions.png"
    fig.savefig(acts, dpi=110)
    plt.close(fig)
    return [timing, acts]
