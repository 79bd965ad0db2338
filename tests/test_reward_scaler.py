"""Reward scaling by the running std of the discounted return (SB3's VecNormalize rule), across resets."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import envs
from policies.actor_critic import ActorCritic
from robotrl.agents.common import OnPolicyCollector
from robotrl.core.running_stats import RewardScaler


def test_rewards_are_divided_by_the_std_of_the_discounted_return():
    scaler = RewardScaler(2, gamma=0.5)
    for _ in range(200):
        scaler(np.array([1.0, 3.0]), np.array([False, False]))
    # The returns settle at 2 and 6 (r / (1 - gamma)); their spread sets the scale, the sign is kept.
    assert np.sqrt(scaler.stats.var) == pytest.approx(2.0, rel=0.05)
    assert scaler.scale(np.array([-2.0, 4.0])) == pytest.approx([-1.0, 2.0], rel=0.05)


def test_a_reset_starts_every_discounted_return_anew_and_keeps_the_statistics():
    """After a resume the envs are reset: the interrupted episodes' returns must not run on into the new
    ones (they would inflate the variance the scale comes from)."""
    env = envs.make_vec("robotrl/CartPole-v0", 2)
    try:
        collector = OnPolicyCollector(env, ActorCritic(4, 1, hidden=(8,)), gamma=0.99, scale_rewards=True,
                                      device=torch.device("cpu"))
        saved = {"ret": np.array([40.0, 55.0]), "mean": np.array(30.0), "var": np.array(90.0), "count": 5000.0}
        collector.scaler.load_state_dict(saved)
        collector.reset(seed=0)
        assert collector.scaler.ret.tolist() == [0.0, 0.0]
        assert collector.scaler.stats.var == 90.0 and collector.scaler.stats.count == 5000.0
    finally:
        env.close()


def test_a_ray_collector_also_starts_every_discounted_return_anew_on_reset():
    from robotrl.core.running_stats import RewardScaler
    from robotrl.scale.ray_rollouts import RayRolloutCollector

    class Pool:  # the worker pool's reset, without Ray
        def reset(self, seed):
            self.seed = seed

    collector = RayRolloutCollector.__new__(RayRolloutCollector)  # its pool is the stub above
    collector.pool, collector.scaler = Pool(), RewardScaler(2, 0.99)
    collector.scaler.load_state_dict({"ret": np.array([40.0, 55.0]), "mean": np.array(30.0),
                                      "var": np.array(90.0), "count": 5000.0})
    collector.reset(7)
    assert collector.pool.seed == 7 and collector.scaler.ret.tolist() == [0.0, 0.0]
    assert collector.scaler.stats.count == 5000.0
