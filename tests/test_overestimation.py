"""Over-estimation (max_a Q(s0, a) minus the observed discounted return) on scripted episodes whose
answer is worked out by hand in each test."""

import numpy as np
import pytest
import torch
from torch import nn

import envs
from robotrl.config import load_config
from robotrl.tools.overestimation import greedy_episodes, group_means, measure, measure_over_training
from robotrl.train.trainer import Trainer, load_policy

AFTER_END = 1000.0
"""Reward an env pays once its scripted episode is over: it must never reach an observed return."""


def _short_run(config, run, total_steps, checkpoint_every, learning_starts):
    """A shipped DQN config trained for `total_steps` into `run` (200-step iterations, no periodic evaluation,
    two final episodes); returns its config."""
    cfg = load_config(config, [f"train.total_steps={total_steps}", "train.eval_every=0", "train.keep_best=false",
                               "train.final_eval_episodes=2",
                               f"train.checkpoint_every={checkpoint_every}", f"dqn.learning_starts={learning_starts}",
                               "dqn.steps_per_iteration=200"])
    Trainer(cfg, run, show_progress=False).run()
    return cfg


class ScriptedEpisodes:
    """A vector env (same-step autoreset) whose env i starts in state i, pays `rewards[i]` one per step
    and then ends by `ends[i]` ('terminated' or 'truncated'); afterwards it plays on, paying AFTER_END."""

    def __init__(self, rewards: list[list[float]], ends: list[str]) -> None:
        self.rewards, self.ends, self.num_envs = rewards, ends, len(rewards)
        self.t = 0
        self.actions: list[np.ndarray] = []

    def reset(self, seed=None):
        self.t = 0
        return np.arange(self.num_envs, dtype=np.float32)[:, None], {}

    def step(self, actions):
        self.actions.append(np.asarray(actions))
        self.t += 1
        reward = np.full(self.num_envs, AFTER_END)
        terminated = np.zeros(self.num_envs, dtype=bool)
        truncated = np.zeros(self.num_envs, dtype=bool)
        for i, script in enumerate(self.rewards):
            if self.t <= len(script):
                reward[i] = script[self.t - 1]
                if self.t == len(script):
                    terminated[i] = self.ends[i] == "terminated"
                    truncated[i] = self.ends[i] == "truncated"
        # After an end the env has reset: a new start state, not one of the scripted ones.
        obs = np.full((self.num_envs, 1), self.num_envs, dtype=np.float32)
        return obs, reward, terminated, truncated, {}


class QTableNet(nn.Module):
    """Q(s, .) = the table's row s; the rows past the scripted states hold zeros."""

    def __init__(self, rows: list[list[float]]) -> None:
        super().__init__()
        self.table = torch.tensor([*rows, [0.0] * len(rows[0])])

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.table[obs[:, 0].long()]

    def deterministic(self, obs: torch.Tensor) -> torch.Tensor:
        return self.forward(obs).argmax(-1)


def test_observed_return_discounts_each_reward_by_gamma_to_its_step():
    env = ScriptedEpisodes([[1.0, 2.0, 4.0]], ["terminated"])
    result = greedy_episodes(QTableNet([[2.0, 5.0]]), env, gamma=0.5, seed=0)
    # 1 + 0.5 * 2 + 0.25 * 4 = 3; max_a Q(s0, a) = 5.
    assert result.observed.tolist() == [3.0] and result.predicted.tolist() == [5.0]
    assert result.lengths.tolist() == [3]
    assert result.summary() == {"episodes": 1, "predicted": 5.0, "observed": 3.0, "overestimation": 2.0,
                                "truncated": 0}
    # The greedy action at the start state is Q's argmax (index 1).
    assert env.actions[0].tolist() == [1]


def test_gamma_one_sums_the_rewards():
    result = greedy_episodes(QTableNet([[7.0, 1.0]]), ScriptedEpisodes([[1.0, 2.0, 4.0]], ["terminated"]),
                             gamma=1.0, seed=0)
    assert result.observed.tolist() == [7.0] and result.summary()["overestimation"] == 0.0


def test_a_truncated_episode_is_not_bootstrapped_and_is_counted():
    # The same rewards ended by a terminal state and by a time limit: the observed return is the
    # discounted sum of what was collected in both (1 + 0.9 + 0.81 + 0.729 = 3.439), with no
    # gamma^4 * V(s_4) added for the truncated one; the report says one episode was cut.
    env = ScriptedEpisodes([[1.0] * 4, [1.0] * 4], ["terminated", "truncated"])
    result = greedy_episodes(QTableNet([[3.0, 1.0], [6.0, 2.0]]), env, gamma=0.9, seed=0)
    np.testing.assert_allclose(result.observed, [3.439, 3.439])
    assert result.truncated.tolist() == [False, True]
    summary = result.summary()
    assert summary["truncated"] == 1
    # Over-estimation: (3 - 3.439 + 6 - 3.439) / 2 = 1.061.
    assert summary["overestimation"] == pytest.approx(1.061)


def test_averages_over_episodes_of_different_lengths_without_counting_rewards_after_an_end():
    # gamma 0.5. Episode a: [3], terminated -> 3. Episode b: [1, 1], terminated -> 1.5.
    # Episode c: [0, 0, 8], truncated -> 0.25 * 8 = 2. Episodes a and b end first and then pay 1000
    # per step while c goes on; none of it may count.
    env = ScriptedEpisodes([[3.0], [1.0, 1.0], [0.0, 0.0, 8.0]], ["terminated", "terminated", "truncated"])
    q = QTableNet([[10.0, -1.0], [0.0, 4.0], [7.0, 7.0]])
    result = greedy_episodes(q, env, gamma=0.5, seed=0)
    assert result.observed.tolist() == [3.0, 1.5, 2.0]
    assert result.predicted.tolist() == [10.0, 4.0, 7.0]
    assert result.lengths.tolist() == [1, 2, 3]
    summary = result.summary()
    assert summary["predicted"] == pytest.approx(7.0)  # (10 + 4 + 7) / 3
    assert summary["observed"] == pytest.approx(6.5 / 3)  # (3 + 1.5 + 2) / 3
    # Mean of the differences (7, 2.5, 5) = 14.5 / 3, which is also mean Q minus mean return.
    assert summary["overestimation"] == pytest.approx(14.5 / 3)
    assert summary["truncated"] == 1 and summary["episodes"] == 3


def test_measure_of_a_cartpole_run_is_the_geometric_sum_of_its_episode_lengths(tmp_path):
    cfg = _short_run("launch/cartpole_dqn.yaml", tmp_path / "run", total_steps=400, checkpoint_every=400,
                     learning_starts=200)
    result = measure(tmp_path / "run", episodes=4, seed=5)
    policy, _, _ = load_policy(tmp_path / "run")
    env = envs.make_vec("robotrl/CartPole-v0", 4, **cfg.env.kwargs)
    try:
        episodes = greedy_episodes(policy, env, 0.99, seed=5)
    finally:
        env.close()
    # Balance pays 1 per step, so an L-step episode's observed return is 1 + 0.99 + ... = (1 - 0.99^L) / 0.01.
    np.testing.assert_allclose(episodes.observed, (1 - 0.99 ** episodes.lengths) / 0.01)
    assert result["episodes"] == 4 and result["algo"] == "dqn"
    assert result["observed"] == pytest.approx(episodes.observed.mean())
    assert result["predicted"] == pytest.approx(episodes.predicted.mean())
    assert result["overestimation"] == pytest.approx(result["predicted"] - result["observed"])


def test_over_training_averages_the_kept_checkpoints_and_groups_by_method(tmp_path):
    _short_run("launch/cartpole_double_dqn.yaml", tmp_path / "run", total_steps=600, checkpoint_every=200,
               learning_starts=100)
    result = measure_over_training(tmp_path / "run", episodes=3, seed=5)
    kept = sorted((tmp_path / "run" / "checkpoints").glob("step_*.pt"))
    assert len(kept) == len(result["checkpoints"]) >= 3
    each = [measure(path, episodes=3, seed=5)["overestimation"] for path in kept]
    assert [c["overestimation"] for c in result["checkpoints"]] == pytest.approx(each)
    assert result["overestimation"] == pytest.approx(np.mean(each))
    final = measure(tmp_path / "run", episodes=3, seed=5)
    assert result["final_overestimation"] == pytest.approx(final["overestimation"])
    assert result["double"] is True
    groups = group_means([result, {**result, "overestimation": result["overestimation"] + 2.0},
                          {"double": False, "overestimation": -1.0}])
    assert groups["double_dqn"]["runs"] == 2
    assert groups["double_dqn"]["mean"] == pytest.approx(result["overestimation"] + 1.0)
    assert groups["double_dqn"]["std"] == pytest.approx(1.0)
    assert groups["dqn"] == {"runs": 1, "mean": -1.0, "std": 0.0}
