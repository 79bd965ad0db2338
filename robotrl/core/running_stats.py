"""Reward scaling by the running standard deviation of the discounted return (as SB3's VecNormalize).

Rewards are divided, never shifted, so that the sign of a reward and the value of termination stay
the same. The statistics are saved with the checkpoint.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class RunningMeanVar:
    """Mean and variance merged batch by batch."""

    def __init__(self, shape: tuple[int, ...] = ()) -> None:
        self.mean = np.zeros(shape, np.float64)
        self.var = np.ones(shape, np.float64)
        self.count = 1e-4

    def update(self, x: np.ndarray) -> None:
        # The same arithmetic as x.mean(0) and x.var(0), without their Python-level wrappers: this
        # runs once per env step and the wrappers cost more than the math.
        n = x.shape[0]
        batch_mean = np.add.reduce(x, axis=0) / n
        d = x - batch_mean
        batch_var = np.add.reduce(d * d, axis=0) / n
        total = self.count + n
        delta = batch_mean - self.mean
        m2 = self.var * self.count + batch_var * n + delta**2 * self.count * n / total
        self.mean = self.mean + delta * n / total
        self.var = m2 / total
        self.count = total


class RewardScaler:
    def __init__(self, num_envs: int, gamma: float, clip: float = 10.0, eps: float = 1e-8) -> None:
        self.gamma, self.clip, self.eps = gamma, clip, eps
        self.ret = np.zeros(num_envs, np.float64)
        self.stats = RunningMeanVar()

    def __call__(self, rewards: np.ndarray, dones: np.ndarray) -> np.ndarray:
        self.ret = self.ret * self.gamma + rewards
        self.stats.update(self.ret)
        self.ret[dones] = 0.0
        return self.scale(rewards)

    def new_episodes(self) -> None:
        """Every env starts a new episode (a reset, also the one after a resume): no return carries over
        into it, while the statistics do."""
        self.ret[:] = 0.0

    def scale(self, rewards: np.ndarray) -> np.ndarray:
        scaled = rewards / np.sqrt(self.stats.var + self.eps)
        return np.minimum(np.maximum(scaled, -self.clip, out=scaled), self.clip, out=scaled)

    def state_dict(self) -> dict[str, Any]:
        return {"ret": self.ret.copy(), "mean": self.stats.mean, "var": self.stats.var, "count": self.stats.count}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.ret = np.array(state["ret"], np.float64)
        self.stats.mean, self.stats.var, self.stats.count = state["mean"], state["var"], state["count"]
