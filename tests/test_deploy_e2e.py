"""The issue's end-to-end check: train Reacher-v0, export it, run it for two minutes in the loop at 50 Hz
against the simulated robot, and reach the checkpoint's evaluated success rate within sampling error."""

import json
import math

import pytest
from runcheck import eval_json

from robotrl.cli import main


def within_sampling_error(p1: float, n1: int, p2: float, n2: int, z: float = 3.0) -> bool:
    """Two-proportion test with the pooled rate: |p1 - p2| <= z standard errors."""
    pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
    return abs(p1 - p2) <= z * math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2)) + 1e-12


def test_within_sampling_error_by_hand():
    # 98/100 vs 27/28: pooled 125/128, SE = sqrt(0.0229 * 0.0457) = 0.032; |diff| = 0.016 < 3 SE.
    assert within_sampling_error(0.98, 100, 27 / 28, 28)
    # 98/100 vs 20/28: pooled 118/128, SE = 0.057; |diff| = 0.27 > 3 SE.
    assert not within_sampling_error(0.98, 100, 20 / 28, 28)


@pytest.mark.slow
def test_exported_reacher_in_the_loop_matches_its_checkpoint(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "launch/reacher_ppo.yaml", "--steps", "600000", "--run-dir", str(run),
                 "--no-progress", "--json"]) == 0
    ev = eval_json(run, 100, capsys)
    assert main(["export", str(run), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["parity_max_abs"] <= 1e-5
    assert main(["deploy", str(run / "policy.onnx"), "--backend", "sim", "--rate", "50", "--duration", "120",
                 "--json"]) == 0
    robot = json.loads(capsys.readouterr().out)["robot"]
    assert robot["episodes"] >= 25  # 6000 ticks of 200-step episodes, less any skipped on a loaded machine
    # A policy that reaches, so that "matches its checkpoint" is not 0 against 0: at 600k steps (a fifth of
    # the config's budget) the checkpoint succeeds in 0.45-0.54 over 100 episodes here (November 30); one trained for
    # 1,024 steps in 0.01. The old bar, 0.85, was a learning figure this test does not own.
    assert robot["success_rate"] >= 0.3
    assert within_sampling_error(ev["success_rate"], ev["episodes"], robot["success_rate"], robot["episodes"])
