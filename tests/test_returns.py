"""Returns and GAE against numbers computed by hand."""

import math

import numpy as np
import pytest
import torch

from robotrl.core.returns import bootstrap_truncated, discounted_returns, explained_variance, gae


def col(*xs):
    return torch.tensor(xs, dtype=torch.float32).reshape(-1, 1)


def test_discounted_returns_single_episode_bootstraps_last_value():
    # G2 = 3 + 0.5*10 = 8; G1 = 2 + 0.5*8 = 6; G0 = 1 + 0.5*6 = 4
    g = discounted_returns(col(1, 2, 3), col(0, 0, 0), torch.tensor([10.0]), gamma=0.5)
    assert g.flatten().tolist() == [4.0, 6.0, 8.0]


def test_discounted_returns_stop_at_episode_end():
    # The episode ends after step 1: G1 = 2, G0 = 1 + 0.5*2 = 2; step 2 starts anew: 3 + 0.5*10 = 8
    g = discounted_returns(col(1, 2, 3), col(0, 1, 0), torch.tensor([10.0]), gamma=0.5)
    assert g.flatten().tolist() == [2.0, 2.0, 8.0]


def test_gae_with_lambda_one_equals_returns_minus_values():
    rewards, values, dones = col(1, 2, 3), col(0.5, 1.0, 1.5), col(0, 1, 0)
    adv, ret = gae(rewards, values, dones, torch.tensor([10.0]), gamma=0.5, lam=1.0)
    expected = discounted_returns(rewards, dones, torch.tensor([10.0]), 0.5)
    assert torch.allclose(ret, expected)
    assert torch.allclose(adv, expected - values)


def test_gae_hand_computed():
    # gamma=0.9, lam=0.8, no episode end, last value 2.
    # d2 = 1 + 0.9*2 - 1 = 1.8; d1 = 0 + 0.9*1 - 0.5 = 0.4; d0 = 1 + 0.9*0.5 - 0 = 1.45
    # A2 = 1.8; A1 = 0.4 + 0.72*1.8 = 1.696; A0 = 1.45 + 0.72*1.696 = 2.67112
    adv, ret = gae(col(1, 0, 1), col(0, 0.5, 1), col(0, 0, 0), torch.tensor([2.0]), gamma=0.9, lam=0.8)
    assert adv.flatten().tolist() == pytest.approx([2.67112, 1.696, 1.8], rel=1e-6)
    assert ret.flatten().tolist() == pytest.approx([2.67112, 2.196, 2.8], rel=1e-6)


def test_gae_terminal_step_does_not_bootstrap():
    # Terminal at the last step: A = r - V, whatever the last value is.
    adv, _ = gae(col(1.0), col(0.25), col(1), torch.tensor([100.0]), gamma=0.99, lam=0.95)
    assert adv.item() == pytest.approx(0.75)


def test_truncation_bootstraps_from_final_value_not_next_episode():
    # A time-limit cut at step 0: reward 1 + gamma * V(final_obs)=0.5*4 = 3, and nothing flows in from
    # the next episode (whose value is 100).
    r = bootstrap_truncated(col(1, 0), col(1, 0).bool(), torch.tensor([4.0]), gamma=0.5)
    adv, _ = gae(r, col(0, 100), col(1, 0), torch.tensor([0.0]), gamma=0.5, lam=1.0)
    assert adv[0].item() == pytest.approx(3.0)
    assert r.flatten().tolist() == [3.0, 0.0]


def test_batched_columns_are_independent():
    rewards = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    dones = torch.tensor([[0.0, 1.0], [0.0, 0.0]])
    g = discounted_returns(rewards, dones, torch.tensor([0.0, 2.0]), gamma=0.5)
    # column 0: G1 = 1, G0 = 1.5; column 1: G0 = 0 (episode ended), G1 = 1 + 0.5*2 = 2
    assert g.tolist() == [[1.5, 0.0], [1.0, 2.0]]


def test_bootstrap_takes_the_cut_episodes_values_in_the_masks_row_major_order():
    # Collectors evaluate V only where the limit cut: the k-th value belongs to the k-th True of the mask.
    rewards = torch.tensor([[1.0, 1.0, 1.0], [2.0, 2.0, 2.0]])
    truncated = np.array([[False, True, False], [True, False, True]])
    r = bootstrap_truncated(rewards, truncated, torch.tensor([10.0, 20.0, 30.0]), gamma=0.5)
    assert r.tolist() == [[1.0, 6.0, 1.0], [12.0, 2.0, 17.0]]
    assert rewards.tolist() == [[1.0, 1.0, 1.0], [2.0, 2.0, 2.0]]  # the input is left as it was


def test_bootstrap_over_env_rows_adds_each_robots_own_final_value():
    # MAPPO: the env's time limit cuts every robot of env 1; each robot has its own V(final state).
    team = torch.tensor([[1.0, 1.0], [3.0, 3.0]])
    r = bootstrap_truncated(team, np.array([False, True]), torch.tensor([[2.0, 4.0]]), gamma=0.5)
    assert r.tolist() == [[1.0, 1.0], [4.0, 5.0]]


def test_explained_variance_by_hand():
    returns = torch.tensor([1.0, 2.0, 3.0, 4.0])
    # residual [0, 0, 0, -1]: sample variance 0.25 against 5/3 for the returns -> 1 - 0.15 = 0.85
    assert explained_variance(torch.tensor([1.0, 2.0, 3.0, 5.0]), returns) == pytest.approx(0.85)
    assert explained_variance(returns, returns) == 1.0
    assert explained_variance(torch.full((4,), 2.5), returns) == pytest.approx(0.0)
    assert math.isnan(explained_variance(returns, torch.ones(4)))
