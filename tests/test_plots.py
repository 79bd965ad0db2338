"""The run folder's plots hold the data they claim: curves read back from the figures, not only files."""

import csv
import subprocess
import sys

import numpy as np

from robotrl.train.logger import read_metrics
from robotrl.train.plots import learning_curve_figure, losses_figure

ROWS = [
    {"step": 1000.0, "losses/policy_loss": -0.01, "losses/entropy": 2.8, "charts/action_std": 1.0,
     "charts/episodic_return_mean": -40.0},
    {"step": 2000.0, "losses/policy_loss": -0.02, "losses/entropy": 2.6, "charts/action_std": 0.9,
     "charts/episodic_return_mean": -30.0, "eval/return_mean": -25.0, "eval/return_std": 2.0},
    {"step": 3000.0, "losses/policy_loss": -0.03, "losses/entropy": 2.4, "losses/value_loss": 0.5,
     "charts/action_std": 0.8, "charts/episodic_return_mean": -20.0, "eval/return_mean": -15.0,
     "eval/return_std": 1.0},
]


def _line(ax, label):
    return next(line for line in ax.get_lines() if line.get_label() == label)


def test_learning_curve_has_training_returns_and_evaluation_points_with_their_spread():
    ax = learning_curve_figure(ROWS).axes[0]
    train = _line(ax, "training episodes (mean of last 100)")
    assert list(train.get_xdata()) == [1000, 2000, 3000] and list(train.get_ydata()) == [-40, -30, -20]
    evals = ax.containers[0]  # the errorbar: its line and the vertical bars
    assert list(evals.lines[0].get_xdata()) == [2000, 3000] and list(evals.lines[0].get_ydata()) == [-25, -15]
    bars = evals.lines[2][0].get_segments()
    assert [(s[0][1], s[1][1]) for s in bars] == [(-27.0, -23.0), (-16.0, -14.0)]  # mean ± std
    assert ax.get_xlabel() == "environment steps" and ax.get_ylabel() == "episode return"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "training episodes (mean of last 100)", "deterministic evaluation (± std)"]


def test_losses_plot_has_one_panel_per_loss_column_and_the_action_std():
    fig = losses_figure(ROWS)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["policy loss", "entropy", "action std", "value loss"]  # in the order they were logged
    entropy = fig.axes[1].get_lines()[0]
    assert list(entropy.get_xdata()) == [1000, 2000, 3000] and list(entropy.get_ydata()) == [2.8, 2.6, 2.4]
    value = fig.axes[3].get_lines()[0]
    assert list(value.get_xdata()) == [3000] and list(value.get_ydata()) == [0.5]  # only where it was logged


def test_training_writes_both_plots_from_its_metrics(reacher_run):
    for name in ("curve.png", "losses.png"):
        assert (reacher_run / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    rows = read_metrics(reacher_run / "metrics.csv")
    ax = learning_curve_figure(rows).axes[0]
    evals = ax.containers[0].lines[0]
    # eval_every 2048 over 6144 steps: evaluations at 2048, 4096 and the final one at 6144.
    assert list(evals.get_xdata()) == [2048, 4096, 6144]
    logged = [r["eval/return_mean"] for r in csv.DictReader((reacher_run / "metrics.csv").open())
              if r.get("eval/return_mean")]
    assert np.allclose(evals.get_ydata(), [float(v) for v in logged])
    titles = {a.get_title() for a in losses_figure(rows).axes}
    assert {"policy loss", "value loss", "entropy", "approx kl", "clipfrac", "explained variance",
            "action std"} <= titles


def test_plot_command_redraws_a_run_folder(reacher_run, tmp_path):
    run = tmp_path / "copy"
    run.mkdir()
    (run / "metrics.csv").write_bytes((reacher_run / "metrics.csv").read_bytes())
    proc = subprocess.run([sys.executable, "-m", "robotrl.cli", "plot", str(run)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert (run / "curve.png").stat().st_size > 10_000 and (run / "losses.png").stat().st_size > 10_000
    proc = subprocess.run([sys.executable, "-m", "robotrl.cli", "plot", str(tmp_path / "nothing")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and "no metrics.csv" in proc.stderr


def test_comparison_reports_of_one_env_overlay_with_their_means(tmp_path, capsys):
    """`robotrl plot A.json B.json --out P`: PPO's 200k and 1M HalfCheetah comparisons on one axis."""
    import json
    from pathlib import Path

    import pytest

    from robotrl.cli import main
    from robotrl.core.stats import mean_ci95
    from robotrl.sb3.plot import reports_figure

    docs = Path(__file__).resolve().parents[1] / "docs" / "compare"
    short, long = (json.loads((docs / f"half_cheetah_ppo{s}.json").read_text()) for s in ("-200k", "_1M"))
    fig, labels = reports_figure([short, long])
    assert len(labels) == 4 and labels[2].startswith("ppo 1,000,000 steps x 3 seeds, ours:")
    drawn = fig.axes[0].get_lines()[2]  # the 1M report's ours: the mean over seeds at each step
    steps = [int(s) for s, _ in long["ours"]["curves"][0]]
    means = [mean_ci95([dict((int(s), r) for s, r in c)[step] for c in long["ours"]["curves"]])[0] for step in steps]
    assert list(drawn.get_xdata()) == steps and np.allclose(drawn.get_ydata(), means)

    out = tmp_path / "overlay.png"
    assert main(["plot", str(docs / "half_cheetah_ppo-200k.json"), str(docs / "half_cheetah_ppo_1M.json"),
                 "--out", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["curves"] == labels
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # Another env's report, or a file that is no report, is refused naming it.
    assert main(["plot", str(docs / "half_cheetah_ppo_1M.json"), str(docs / "inverted_pendulum_ppo.json"),
                 "--out", str(out)]) == 1
    assert "reports of one env expected" in capsys.readouterr().err
    bad = tmp_path / "x.json"
    bad.write_text('{"env": "HalfCheetah-v5"}')
    assert main(["plot", str(bad), "--out", str(out)]) == 1
    assert f"{bad}: not a `robotrl compare` report.json (missing algo, steps, seeds)" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["plot"])
