"""Discretizing wrappers: action bins, observation grids, single and batched envs, config errors."""

import numpy as np
import pytest
import torch
from gymnasium import spaces

import envs
from envs.wrappers import ActionBins, ObservationGrid, find_action_bins, find_observation_grid
from policies.q_table import GridCells


def test_action_bins_are_the_grid_of_joint_actions():
    bins = ActionBins(spaces.Box(np.array([-1, -2], np.float32), np.array([1, 2], np.float32)), 3)
    assert bins.n == 9
    assert bins.table[0].tolist() == [-1, -2] and bins.table[4].tolist() == [0, 0]
    assert bins.table[5].tolist() == [0, 2] and bins.table[8].tolist() == [1, 2]


def test_explicit_joint_actions_and_bad_specs():
    box = spaces.Box(-1.0, 1.0, shape=(1,))
    assert ActionBins(box, [[-1.0], [0.25], [1.0]]).table[:, 0].tolist() == [-1.0, 0.25, 1.0]
    with pytest.raises(ValueError, match="outside the bounds"):
        ActionBins(box, [[-2.0], [1.0]])
    with pytest.raises(ValueError, match="at least 2 bins"):
        ActionBins(box, 1)


def test_observation_grid_cells_by_hand():
    grid = ObservationGrid(bins=[2, 1, 4], low=[-1, 0, 0], high=[1, 1, 4])
    # dimension 0: [-1, 0) -> 0, [0, 1] -> 1; dimension 2: unit cells, clipped at the edges.
    obs = np.array([[-0.5, 9.0, 0.5], [0.5, 0.0, 3.5], [5.0, 0.0, -7.0], [0.0, 0.5, 2.0]])
    assert grid(obs).tolist() == [0 * 4 + 0, 1 * 4 + 3, 1 * 4 + 0, 1 * 4 + 2]
    assert grid.n == 8


def test_policy_grid_matches_the_env_grid():
    grid = ObservationGrid(bins=[3, 1, 6, 3, 6], low=[-2.4, 0.9, -0.2, -2, -2], high=[2.4, 1, 0.2, 2, 2])
    cells = GridCells(grid.bins, grid.low, grid.high)
    obs = np.random.default_rng(0).normal(scale=1.5, size=(1000, 5))
    assert np.array_equal(cells(torch.as_tensor(obs, dtype=torch.float32)).numpy(), grid(obs.astype(np.float32)))


def test_vector_env_takes_indices_and_reports_cells():
    kwargs = {"task": "balance", "discretize_actions": 2,
              "discretize_obs": {"bins": [1, 1, 6, 1, 1], "low": [-1, 0, -0.3, -1, -1], "high": [1, 1, 0.3, 1, 1]}}
    env = envs.make_vec("robotrl/CartPole-v0", 3, **kwargs)
    try:
        assert env.single_action_space == spaces.Discrete(2)
        assert env.single_observation_space == spaces.Discrete(6)
        assert find_action_bins(env).table[:, 0].tolist() == [-1.0, 1.0]
        assert find_observation_grid(env).n == 6
        obs, _ = env.reset(seed=0)
        assert obs.dtype == np.int64 and set(obs.tolist()) <= {2, 3}  # the pole starts near upright
        ended = False
        for _ in range(200):  # always push right: the pole falls and the episodes end
            obs, _, terminated, _, info = env.step(np.ones(3, dtype=np.int64))
            if terminated.any():
                ended = True
                final = [c for c, d in zip(info["final_obs"], terminated, strict=True) if d]
                assert all(isinstance(c, int) and 0 <= c < 6 for c in final)
                break
        assert ended
    finally:
        env.close()


def test_single_env_maps_the_index_to_the_torque():
    env = envs.make("robotrl/Reacher-v0", discretize_actions=3)
    try:
        env.reset(seed=0)
        env.step(8)  # both joints +1
        assert env.unwrapped.sim.ctrl[0].tolist() == [1.0, 1.0]
        env.step(3)  # shoulder 0, elbow -1
        assert env.unwrapped.sim.ctrl[0].tolist() == [0.0, -1.0]
    finally:
        env.close()


def test_bad_grid_config_is_a_clear_error():
    with pytest.raises(ValueError, match="discretize_obs: expected a mapping with keys bins, low, high"):
        envs.make_vec("robotrl/CartPole-v0", 1, discretize_obs={"bins": [2]})
