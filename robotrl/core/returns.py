"""Discounted returns and generalized advantage estimation, as pure functions over (T, N) tensors.

Convention: `dones[t]` is true when the episode ended at step t, so step t+1 belongs to a new
episode and nothing is bootstrapped across. A time-limit truncation is also an end here; its
bootstrap value gamma * V(final_obs) is added to that step's reward by the caller
(see `bootstrap_truncated`), so truncation is not treated as termination.
"""

from __future__ import annotations

import numpy as np
import torch


def discounted_returns(
    rewards: torch.Tensor, dones: torch.Tensor, last_value: torch.Tensor, gamma: float
) -> torch.Tensor:
    """G_t = r_t + gamma * (1 - done_t) * G_{t+1}, with G_T = last_value (zeros for Monte Carlo)."""
    returns = torch.empty_like(rewards)
    discount = gamma * (1.0 - dones.to(rewards.dtype))
    running = last_value.to(rewards.dtype)
    for t in range(rewards.shape[0] - 1, -1, -1):
        # One fused op per step: the recursion is the only part that cannot be vectorized over time.
        running = torch.addcmul(rewards[t], discount[t], running, out=returns[t])
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
    not_done = 1.0 - dones.to(rewards.dtype)
    next_values = torch.cat([values[1:], last_value.to(values.dtype).unsqueeze(0)])
    # The TD errors of all steps at once; only the lambda-recursion over them runs step by step.
    deltas = rewards + gamma * not_done * next_values - values
    decay = (gamma * lam) * not_done
    advantages = torch.empty_like(rewards)
    running = torch.zeros_like(deltas[0])
    for t in range(rewards.shape[0] - 1, -1, -1):
        running = torch.addcmul(deltas[t], decay[t], running, out=advantages[t])
    return advantages, advantages + values


def time_limit_cut(terminated: np.ndarray, truncated: np.ndarray) -> np.ndarray:
    """The steps where only the time limit ended the episode. Gymnasium's TimeLimit also reports
    truncated on the limit's last step when the episode terminated there; that state is terminal and
    must not be bootstrapped (SB3 bootstraps truncated and not terminated as well)."""
    return np.asarray(truncated, dtype=bool) & ~np.asarray(terminated, dtype=bool)


def bootstrap_truncated(
    rewards: torch.Tensor, truncated: torch.Tensor | np.ndarray, final_values: torch.Tensor, gamma: float
) -> torch.Tensor:
    """r + gamma * V(final_obs) where the time limit cut the episode; a terminal state is worth 0, so
    terminated and running steps keep r. `truncated` masks the leading dimensions of `rewards`;
    `final_values` holds V of the cut episodes' final observations only, in the mask's row-major order
    (the shape of `rewards[truncated]`): collectors evaluate the critic just where the limit cut."""
    mask = torch.as_tensor(truncated, dtype=torch.bool, device=rewards.device)
    out = rewards.clone()
    out[mask] += gamma * final_values.to(rewards.dtype)
    return out


def explained_variance(values: torch.Tensor, returns: torch.Tensor) -> float:
    """1 - Var[returns - values] / Var[returns]: how much of the return the critic explains (1: all,
    0: no better than the mean, negative: worse); NaN when the returns do not vary."""
    var = returns.var()
    return float(1 - (returns - values).var() / var) if var > 0 else float("nan")
