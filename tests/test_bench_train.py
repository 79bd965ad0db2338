"""`robotrl bench train`: ours against SB3 on the same settings, both on the CPU."""

from __future__ import annotations

import pytest

from robotrl.config import load_config
from robotrl.sb3 import bench


def test_bench_train_refuses_an_algorithm_sb3_lacks_before_our_side_trains(monkeypatch):
    monkeypatch.setattr(bench, "_ours", lambda *a: pytest.fail("our side trained before the refusal"))
    with pytest.raises(ValueError, match="has no SB3 translation"):
        bench.bench_train(load_config("launch/cartpole_a3c.yaml"), steps=1000)
    with pytest.raises(ValueError, match="--steps and --rounds"):
        bench.bench_train(load_config("launch/cartpole_ppo.yaml"), steps=1000, rounds=0)


def test_bench_train_runs_both_sides_on_the_cpu_whatever_the_config_says(monkeypatch):
    devices = []

    def side(name, seconds):
        def run(cfg, steps):
            devices.append((name, cfg.train.device))
            return steps, seconds, seconds
        return run

    monkeypatch.setattr(bench, "_ours", side("ours", 1.0))
    monkeypatch.setattr(bench, "_sb3", side("sb3", 2.0))
    out = bench.bench_train(load_config("launch/cartpole_ppo.yaml", ["train.device=cuda"]), steps=100, rounds=1)
    assert devices == [("ours", "cpu"), ("sb3", "cpu")]
    assert out["speedup"] == pytest.approx(2.0)
