"""The shipped configs reach their targets (slow: minutes each; `pytest -m slow`)."""

import pytest
from runcheck import train_shipped


@pytest.mark.slow
def test_inverted_pendulum_ppo_balances_within_50k_steps(tmp_path):
    result = train_shipped("launch/inverted_pendulum_ppo.yaml", tmp_path)
    assert result.steps <= 50_000
    assert result.eval["return_mean"] == pytest.approx(1000.0)


@pytest.mark.slow
def test_reacher_ppo_reaches_90_percent_success(tmp_path):
    result = train_shipped("launch/reacher_ppo.yaml", tmp_path)
    assert result.eval["episodes"] == 100
    assert result.eval["success_rate"] >= 0.9
    assert result.wall_s < 600
