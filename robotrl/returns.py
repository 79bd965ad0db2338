"""Discounted returns and generalized advantage estimation, as pure functions over (T, N) tensors.

Convention: `dones[t]` is true when the episode ended at step t, so step t+1 belongs to a new
episode and nothing is bootstrapped across. A time-limit truncation is also an end here; its
bootstrap value gamma * V(final_obs) is added to that step's reward by the caller
(see `bootstrap_truncated`), so truncation is not treated as termination.
"""

from __future__ import annotations

import torch


def discounted_returns(
    rewards: torch.Tensor, dones: torch.Tensor, last_value: torch.Tensor, gamma: float
) -> torch.Tensor:
    """G_t = r_t + gamma * (1 - done_t) * G_{t+1}, with G_T = last_value (zeros for Monte Carlo)."""
    returns = torch.empty_like(rewards)
    running = last_value
    not_done = 1.0 - dones.to(rewards.dtype)
    for t in range(rewards.shape[0] - 1, -1, -1):
        running = rewards[t] + gamma * not_done[t] * running
        returns[t] = running
    return returns


def gae(
    rewards: torch.Tensor,
    values: torch.Tensor,
    dones: torch.Tensor,
    last_value: torch.Tensor,
    gamma: float,
    lam: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """GAE(lambda) advantages and the value targets (advantages + values)."""
    advantages = torch.empty_like(rewards)
    running = torch.zeros_like(last_value)
    not_done = 1.0 - dones.to(rewards.dtype)
    next_value = last_value
    for t in range(rewards.shape[0] - 1, -1, -1):
        delta = rewards[t] + gamma * not_done[t] * next_value - values[t]
        running = delta + gamma * lam * not_done[t] * running
        advantages[t] = running
        next_value = values[t]
    return advantages, advantages + values


def bootstrap_truncated(
    rewards: torch.Tensor, truncated: torch.Tensor, final_values: torch.Tensor, gamma: float
) -> torch.Tensor:
    """r + gamma * V(final_obs) where the time limit cut the episode (a terminal state is worth 0)."""
    return rewards + gamma * final_values * truncated.to(rewards.dtype)
