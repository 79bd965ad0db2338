"""The shipped configs reach their targets (slow: minutes each; `pytest -m slow`)."""

import pytest

from robotrl.config import load_config
from robotrl.train.trainer import Trainer


@pytest.mark.slow
def test_inverted_pendulum_ppo_balances_within_50k_steps(tmp_path):
    cfg = load_config("launch/inverted_pendulum_ppo.yaml")
    result = Trainer(cfg, tmp_path / "run", show_progress=False).run()
    assert result.steps <= 50_000
    assert result.eval["return_mean"] == pytest.approx(1000.0)


@pytest.mark.slow
def test_reacher_ppo_reaches_90_percent_success(tmp_path):
    cfg = load_config("launch/reacher_ppo.yaml")
    result = Trainer(cfg, tmp_path / "run", show_progress=False).run()
    assert result.eval["episodes"] == 100
    assert result.eval["success_rate"] >= 0.9
    assert result.wall_s < 600
