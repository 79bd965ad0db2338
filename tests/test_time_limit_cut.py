"""A step that both terminates and reaches the time limit is terminal: nothing is bootstrapped there.

Gymnasium's TimeLimit reports truncated=True on the limit's last step even when the episode terminated
on it; any Gymnasium id stepped through SyncVectorEnv (InvertedPendulum-v5 and the like) passes that on.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import AutoresetMode, SyncVectorEnv
from gymnasium.wrappers import TimeLimit

from policies.actor_critic import ActorCritic
from robotrl.agents.common import OnPolicyCollector, rollout_storage
from robotrl.core.episodes import EpisodeStats
from robotrl.core.returns import time_limit_cut


class FallsAtStep(gym.Env):
    """Reward 1 per step; the episode terminates at step `fall` (None: never)."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def __init__(self, fall: int | None) -> None:
        self.fall, self.t = fall, 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.full(2, 0.5, np.float32), {}

    def step(self, action):
        self.t += 1
        return np.full(2, 0.5, np.float32), 1.0, self.t == self.fall, False, {}


def _rewards_of_first_episode(fall: int | None) -> torch.Tensor:
    env = SyncVectorEnv([lambda: TimeLimit(FallsAtStep(fall), max_episode_steps=3)],
                        autoreset_mode=AutoresetMode.SAME_STEP)
    torch.manual_seed(0)
    policy = ActorCritic(2, 1, hidden=(8,), normalize_obs=False)
    with torch.no_grad():
        policy.critic[-1].bias.fill_(4.0)  # V = 4 everywhere (weights zeroed below)
        policy.critic[-1].weight.zero_()
    collector = OnPolicyCollector(env, policy, gamma=0.5, scale_rewards=False, device=torch.device("cpu"))
    collector.reset(seed=0)
    storage = rollout_storage(3, env, policy, torch.device("cpu"))
    collector.fill(storage, EpisodeStats(env.num_envs))
    env.close()
    return storage.rewards[:, 0]


def test_a_step_that_terminates_on_the_time_limit_is_not_bootstrapped():
    assert _rewards_of_first_episode(fall=3).tolist() == [1.0, 1.0, 1.0]


def test_a_step_cut_by_the_time_limit_alone_is_bootstrapped():
    # The same episode without the fall: 1 + 0.5 * V(final_obs) = 1 + 0.5 * 4 on the limit's step.
    assert _rewards_of_first_episode(fall=None).tolist() == [1.0, 1.0, 3.0]


def test_time_limit_cut_is_truncated_and_not_terminated():
    terminated = np.array([False, True, True, False])
    truncated = np.array([False, False, True, True])
    assert time_limit_cut(terminated, truncated).tolist() == [False, False, False, True]


def test_a_ray_rollout_worker_reports_only_the_limits_cut_as_truncated():
    """Ray's rollout workers send truncated and final observations to the learner, which bootstraps them:
    the step that terminated on the limit's last step goes out as terminated only."""
    from robotrl.scale.rollout_worker import RolloutWorker

    for fall, cut in ((3, False), (None, True)):
        env_id = f"robotrl_test/FallsAtStep{fall}-v0"
        if env_id not in gym.registry:
            gym.register(env_id, entry_point=lambda fall=fall: FallsAtStep(fall), max_episode_steps=3)
        config = {"algo": "ppo", "env": {"id": env_id, "num_envs": 1}, "policy": {"hidden": [8]}}
        worker = RolloutWorker(config, 0, 1)
        worker.reset(0, 0)
        out = worker.rollout(worker.policy.state_dict(), 3)
        assert out["terminated"][:, 0].tolist() == [False, False, fall == 3]
        assert out["truncated"][:, 0].tolist() == [False, False, cut]
        assert len(out["final_obs"]) == int(cut)
