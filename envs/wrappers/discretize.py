"""Discretizing wrappers: continuous torques -> a few joint actions (for DQN), observations -> grid cells
(for tabular methods).

Each map is a plain numpy object (`ActionBins`, `ObservationGrid`) so that a policy can copy it into
itself and export a network whose output is already the continuous action of the chosen bin.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector import VectorActionWrapper, VectorEnv, VectorWrapper
from gymnasium.vector.utils import batch_space


class ActionBins:
    """Index -> continuous joint action: k evenly spaced values per dimension (k^d joint actions), or
    an explicit list of joint actions."""

    def __init__(self, space: spaces.Box, spec: int | Sequence[Sequence[float]]) -> None:
        if not isinstance(space, spaces.Box) or len(space.shape) != 1:
            raise ValueError(f"discretize_actions needs a flat Box action space, got {space}")
        dim = space.shape[0]
        if isinstance(spec, bool) or not isinstance(spec, int | list | tuple):
            raise ValueError(f"discretize_actions: expected a bin count or a list of joint actions, got {spec!r}")
        if isinstance(spec, int):
            if spec < 2:
                raise ValueError(f"discretize_actions: expected at least 2 bins per dimension, got {spec}")
            if not np.all(np.isfinite(space.low)) or not np.all(np.isfinite(space.high)):
                raise ValueError("discretize_actions: the action space has infinite bounds; list the actions")
            axes = [np.linspace(lo, hi, spec) for lo, hi in zip(space.low, space.high, strict=True)]
            table = np.array(list(itertools.product(*axes)), dtype=np.float32)
        else:
            table = np.asarray(spec, dtype=np.float32)
            if table.ndim == 1 and dim == 1:
                table = table[:, None]
            if table.ndim != 2 or table.shape[1] != dim or len(table) < 2:
                raise ValueError(f"discretize_actions: expected a list of at least 2 joint actions of size {dim}, "
                                 f"got shape {table.shape}")
            if np.any(table < space.low) or np.any(table > space.high):
                raise ValueError(f"discretize_actions: actions outside the bounds [{space.low}, {space.high}]")
        self.table = table
        """(n, act_dim) float32: the continuous action of each index."""

    @property
    def n(self) -> int:
        return len(self.table)

    def __call__(self, index: np.ndarray) -> np.ndarray:
        index = np.asarray(index, dtype=np.int64)
        if np.any(index < 0) or np.any(index >= self.n):
            raise ValueError(f"action index out of range [0, {self.n}): {index}")
        return self.table[index]


class ObservationGrid:
    """A box cut into `bins[i]` equal cells per dimension; values outside [low, high] fall in the edge
    cells. A dimension with one bin is ignored (the classic way to drop cart position from CartPole)."""

    def __init__(self, bins: Sequence[int], low: Sequence[float], high: Sequence[float]) -> None:
        self.bins = np.asarray(bins, dtype=np.int64)
        self.low = np.asarray(low, dtype=np.float64)
        self.high = np.asarray(high, dtype=np.float64)
        if not (self.bins.ndim == 1 and self.low.shape == self.bins.shape == self.high.shape):
            raise ValueError(f"discretize_obs: bins, low and high must be lists of one length, got "
                             f"{len(self.bins)}, {len(self.low)}, {len(self.high)}")
        if np.any(self.bins < 1) or np.any(self.high <= self.low):
            raise ValueError("discretize_obs: expected bins >= 1 and high > low in every dimension")

    @property
    def n(self) -> int:
        return int(np.prod(self.bins))

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        """Cell index (row-major over the dimensions) of each observation in a (..., d) array."""
        obs = np.asarray(obs, dtype=np.float64)
        if obs.shape[-1] != len(self.bins):
            raise ValueError(f"discretize_obs: grid has {len(self.bins)} dimensions, observation has {obs.shape[-1]}")
        frac = (obs - self.low) / (self.high - self.low)
        cell = np.clip(np.floor(frac * self.bins), 0, self.bins - 1).astype(np.int64)
        return np.ravel_multi_index(tuple(np.moveaxis(cell, -1, 0)), tuple(self.bins))

    @classmethod
    def from_config(cls, spec: Any) -> ObservationGrid:
        if not isinstance(spec, dict) or set(spec) != {"bins", "low", "high"}:
            raise ValueError(f"discretize_obs: expected a mapping with keys bins, low, high; got {spec!r}")
        return cls(spec["bins"], spec["low"], spec["high"])


class DiscretizeActions(gym.ActionWrapper):
    """A single env whose Box actions become Discrete(n) indices into `bins.table`."""

    def __init__(self, env: gym.Env, spec: int | Sequence[Sequence[float]]) -> None:
        super().__init__(env)
        self.bins = ActionBins(env.action_space, spec)
        self.action_space = spaces.Discrete(self.bins.n)

    def action(self, action: Any) -> np.ndarray:
        return self.bins(action)


class DiscretizeObservations(gym.ObservationWrapper):
    """A single env whose Box observations become Discrete grid-cell indices."""

    def __init__(self, env: gym.Env, grid: ObservationGrid) -> None:
        super().__init__(env)
        self.grid = grid
        self.observation_space = spaces.Discrete(grid.n)

    def observation(self, observation: np.ndarray) -> int:
        return int(self.grid(observation))


class DiscretizeVectorActions(VectorActionWrapper):
    """The batched version: (N,) indices in, (N, act_dim) continuous actions to the envs."""

    def __init__(self, env: VectorEnv, spec: int | Sequence[Sequence[float]]) -> None:
        super().__init__(env)
        self.bins = ActionBins(env.single_action_space, spec)
        self.single_action_space = spaces.Discrete(self.bins.n)
        self.action_space = batch_space(self.single_action_space, env.num_envs)

    def actions(self, actions: np.ndarray) -> np.ndarray:
        return self.bins(np.asarray(actions).reshape(self.num_envs))


class DiscretizeVectorObservations(VectorWrapper):
    """The batched version: (N, d) observations -> (N,) cells; `final_obs` is discretized too.
    (Gymnasium's VectorObservationWrapper refuses SAME_STEP autoreset, which our envs use.)"""

    def __init__(self, env: VectorEnv, grid: ObservationGrid) -> None:
        super().__init__(env)
        self.grid = grid
        self.single_observation_space = spaces.Discrete(grid.n)
        self.observation_space = batch_space(self.single_observation_space, env.num_envs)

    def observations(self, observations: np.ndarray) -> np.ndarray:
        return self.grid(observations)

    def reset(self, *, seed: int | list[int] | None = None, options: dict[str, Any] | None = None):
        obs, info = self.env.reset(seed=seed, options=options)
        return self.observations(obs), info

    def step(self, actions):
        obs, reward, terminated, truncated, info = self.env.step(actions)
        if "final_obs" in info:
            final = np.empty(self.num_envs, dtype=object)
            final[:] = [None if o is None else int(self.grid(o)) for o in info["final_obs"]]
            info = {**info, "final_obs": final}
        return self.observations(obs), reward, terminated, truncated, info
