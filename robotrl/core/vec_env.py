"""The env seams, as types: what agents and the trainer use of a batched env.

A robotrl robot, a Gymnasium MuJoCo id and a Ray worker's spec env all look like `VecEnv` to the
single-robot agents; the multi-robot agents (MAPPO) see `MultiVecEnv` (envs.multi_batch's interface).
Both are structural: any object with these attributes fits, nothing has to inherit from them.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
from gymnasium import spaces

from envs.multi_batch import MultiBatch


def space_shape(space: spaces.Space) -> tuple[int, ...]:
    """The shape of one observation or action (a Discrete one: ()), for sizing storage."""
    if space.shape is None:
        raise ValueError(f"{space}: a space without a shape cannot be stored")
    return space.shape


class EnvHandle(Protocol):
    """What the trainer itself needs of any training env: its batch size, and a way to release it."""

    num_envs: int
    """Simulations stepped together; rewards, terminations and truncations are arrays of this length."""

    def close(self) -> None:
        """Release the simulations (and renderers)."""


class VecEnv(EnvHandle, Protocol):
    """A Gymnasium vector env, in NEXT_STEP or SAME_STEP autoreset mode (the part of its API we use)."""

    single_observation_space: spaces.Space
    """One simulation's observation space: a flat Box, or a Box of stacked frames for pixels."""
    single_action_space: spaces.Space
    """One simulation's action space: Box (continuous) or Discrete."""
    observation_space: spaces.Space
    action_space: spaces.Space

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[np.ndarray, dict[str, Any]]:
        """obs [num_envs, *obs_shape], infos (dict of arrays with `_key` masks)."""
        ...

    def step(self, actions: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """actions [num_envs, *act_shape] -> obs [num_envs, *obs_shape], reward [num_envs] (float),
        terminated [num_envs] (bool), truncated [num_envs] (bool), infos. Where an episode ended, obs holds
        the next episode's first observation and `infos["final_obs"][i]` the last one."""
        ...


MultiVecEnv = MultiBatch
"""A batch of multi-robot simulations (envs.multi_batch's interface, a Protocol: envs cannot import robotrl,
so the interface its batches inherit is also this seam's type)."""
