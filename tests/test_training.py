"""Training end to end: the run folder, learning, checkpoints, resume after SIGKILL, eval."""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from runcheck import assert_same_seed_same_weights

from robotrl.config import load_config
from robotrl.train.trainer import Trainer, load_policy


def test_short_run_writes_the_run_folder(tiny_config, tmp_path):
    cfg = load_config(tiny_config())
    result = Trainer(cfg, tmp_path / "run", show_progress=False).run()
    run = tmp_path / "run"
    for name in ("config.yaml", "metrics.csv", "eval.json", "curve.png", "checkpoints/latest.pt"):
        assert (run / name).exists(), name
    assert any(p.name.startswith("events.out.tfevents") for p in run.iterdir())
    assert result.steps == 4096
    ev = json.loads((run / "eval.json").read_text())
    assert set(ev) >= {"episodes", "return_mean", "return_std", "length_mean", "success_rate"}
    assert ev["episodes"] == 4 and ev["length_mean"] == 200
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    assert [float(r["step"]) for r in rows][:4] == [512, 1024, 1536, 2048]
    assert "losses/approx_kl" in rows[0] and "charts/SPS" in rows[0]


def test_same_seed_gives_the_same_run(tiny_config, tmp_path):
    assert_same_seed_same_weights(load_config(tiny_config(train={"total_steps": 2048})), tmp_path)


def test_ppo_learns_to_reach(tiny_config, tmp_path, learns):
    """Within 300k steps (about 20 s) the arm gets much closer to its targets than at the start."""
    cfg = load_config(tiny_config(env={"num_envs": 32}, train={"total_steps": 300_000, "eval_every": 0,
                                                                 "final_eval_episodes": 32,
                                                                 "checkpoint_every": 10**9},
                                  ppo={"batch_size": 512, "n_epochs": 10, "gamma": 0.98, "anneal_lr": False},
                                  policy={"init_log_std": -0.5, "hidden": [128, 128]}))
    Trainer(cfg, tmp_path / "run", show_progress=False).run()
    rows = list(csv.DictReader((tmp_path / "run" / "metrics.csv").open()))
    returns = [float(r["charts/episodic_return_mean"]) for r in rows if r.get("charts/episodic_return_mean")]
    final = json.loads((tmp_path / "run" / "eval.json").read_text())
    # The first episodes (random actions) score about -36. The final evaluation's return, with these
    # settings, on three CPUs (floating point differs between them, and so does each seed's course):
    # - AMD EPYC (November 29), seeds 0-4: -9.03, -10.28, -9.57, -11.78, -8.61;
    # - Intel Xeon family 6 model 207, torch AVX-512 (December 1), seeds 0-7: -10.57, -9.80, -10.38, -13.87,
    #   -11.35, -11.64, -9.74, -12.69;
    # - another AVX-512 EPYC (issue 18), seed 1: -15.47 (the old threshold, -15, failed there).
    # At learning rate 0 (`no_learning`), the Xeon, seeds 0-4: -46.68, -47.26, -46.61, -45.73, -45.49.
    # The threshold sits 9.5 below the worst learning figure seen and 20.5 above the best control.
    assert returns[0] < -20
    assert (final["return_mean"] > -25) == learns, final


def _metrics_steps(run: Path) -> list[float]:
    return [float(r["step"]) for r in csv.DictReader((run / "metrics.csv").open())]


def test_sigkill_then_resume_continues_from_the_last_checkpoint(tiny_config, tmp_path):
    config = tiny_config(train={"total_steps": 400_000, "checkpoint_every": 8192, "keep_checkpoints": False})
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "robotrl.cli", "train", config, "--run-dir", str(run), "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    latest = run / "checkpoints" / "latest.pt"
    deadline = time.time() + 120
    while time.time() < deadline and not (latest.exists() and torch.load(latest, weights_only=False)["step"] >= 24_576):
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    state = torch.load(latest, weights_only=False)  # the file is whole after SIGKILL
    killed_at = state["step"]
    assert 24_576 <= killed_at < 400_000
    subprocess.run([sys.executable, "-m", "robotrl.cli", "train", config, "--run-dir", str(run), "--resume",
                    "--steps", str(killed_at + 8192), "--no-progress"], check=True, capture_output=True)
    resumed = torch.load(latest, weights_only=False)
    assert resumed["step"] == killed_at + 8192
    steps = _metrics_steps(run)
    assert steps == sorted(steps) and len(steps) == len(set(steps)), "metrics rows duplicated after resume"
    assert steps[-1] == killed_at + 8192
    # The optimizer continued: Adam's step count is the sum of both parts' updates.
    adam_steps = [s["step"] for s in resumed["agent"]["optimizer"]["state"].values()]
    assert float(adam_steps[0]) == (killed_at + 8192) // 512 * 2 * 2
    assert json.loads((run / "eval.json").read_text())["episodes"] == 4


def test_resume_restores_normalizer_and_rng(tiny_config, tmp_path):
    cfg = load_config(tiny_config(train={"total_steps": 2048}))
    Trainer(cfg, tmp_path / "run", show_progress=False).run()
    saved = torch.load(tmp_path / "run" / "checkpoints" / "latest.pt", weights_only=False)
    policy, _, _ = load_policy(tmp_path / "run")
    assert torch.equal(policy.normalizer.mean, saved["agent"]["policy"]["normalizer.mean"])
    assert saved["agent"]["policy"]["normalizer.count"] > 2048
    assert "torch" in saved["rng"] and "numpy" in saved["rng"]


@pytest.mark.parametrize("missing", ["latest"])
def test_resume_without_checkpoint_is_a_clear_error(tiny_config, tmp_path, missing):
    proc = subprocess.run([sys.executable, "-m", "robotrl.cli", "train", tiny_config(), "--run-dir",
                           str(tmp_path / "nothing"), "--resume"], capture_output=True, text=True)
    assert proc.returncode != 0
    assert "no checkpoint at" in proc.stderr and missing in proc.stderr


def test_eval_cli_prints_the_json_fields(tiny_config, tmp_path):
    cfg = load_config(tiny_config(train={"total_steps": 1024}))
    Trainer(cfg, tmp_path / "run", show_progress=False).run()
    proc = subprocess.run([sys.executable, "-m", "robotrl.cli", "eval", str(tmp_path / "run"), "--episodes", "6",
                           "--json"], capture_output=True, text=True, check=True)
    out = json.loads(proc.stdout)
    assert out["episodes"] == 6
    assert set(out) == {"episodes", "return_mean", "return_std", "length_mean", "success_rate", "terminated",
                        "info_means", "target", "target_met"}
    assert out["target"] is None and out["target_met"] is None  # the tiny config states no goal
    assert 0.0 <= out["success_rate"] <= 1.0
    assert out["terminated"] == 0  # Reacher has no terminal states, only its time limit
    # Reacher reports the fingertip distance each step; its mean is a distance inside the arm's reach
    assert 0.0 < out["info_means"]["distance"] < 0.5
