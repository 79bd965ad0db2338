"""The batched training interface for multi-robot envs: arrays over (envs, agents), SAME_STEP autoreset.

`reset` returns (obs [n, m, obs_dim], state [n, state_dim]); `step(actions [n, m, act_dim])` returns
(obs, state, team reward [n], terminated [n], truncated [n], info). Where an episode ended, the step
returns the reset observation, and `info["final_obs"]` / `info["final_state"]` hold the last ones
(rows valid where `info["done"]`), so a learner can bootstrap time-limit truncations.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, Protocol

import numpy as np
from gymnasium.utils import seeding

from envs.sim import BatchSim
from envs.tasks.multipush import MultiPushTask, multipush_model


class MultiBatch(Protocol):
    """A batch of multi-robot simulations: arrays over (envs, robots), one team reward per simulation.

    Ours inherit it (MultiPushBatch natively, ParallelBatch over PettingZoo envs) for `num_agents` and the
    abstract methods; as a Protocol it is also the type the multi-robot agents take
    (robotrl.core.vec_env.MultiVecEnv), where any object with these attributes fits, a wrapper included.
    """

    num_envs: int
    """Simulations stepped together; rewards, terminations and truncations are arrays of this length."""
    agents: list[str]
    """The robots' names, in the order of the robot axis."""
    obs_dim: int
    """One robot's observation size (padded to the largest robot's)."""
    state_dim: int
    """The global state's size (a centralized critic's input)."""
    act_dim: int
    """One robot's action size (padded to the largest robot's)."""
    action_low: np.ndarray
    """[num_agents, act_dim] action lower bounds."""
    action_high: np.ndarray
    """[num_agents, act_dim] action upper bounds."""
    max_episode_steps: int
    """Steps after which an episode is truncated."""

    @property
    def num_agents(self) -> int:
        """Robots per simulation."""
        return len(self.agents)

    @abstractmethod
    def reset(self, seed: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """obs [num_envs, num_agents, obs_dim], global state [num_envs, state_dim]; env e is seeded seed + e."""

    @abstractmethod
    def step(self, actions: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """actions [num_envs, num_agents, act_dim] -> obs, state, team reward [num_envs], terminated [num_envs],
        truncated [num_envs], info (`final_obs`, `final_state`, `done`: rows valid where an episode ended)."""

    @abstractmethod
    def close(self) -> None:
        """Release the simulations."""


class MultiPushBatch(MultiBatch):
    """num_envs MultiPush simulations stepped together on MuJoCo's thread pool."""

    def __init__(self, num_envs: int, n_robots: int = 2, max_episode_steps: int | None = None,
                 nthread: int | None = None) -> None:
        self.num_envs = num_envs
        self.sim = BatchSim(multipush_model(n_robots), num_envs, nthread)
        self.task = MultiPushTask(self.sim, n_robots)
        self.agents = [f"robot_{i}" for i in range(n_robots)]
        self.obs_dim, self.state_dim, self.act_dim = self.task.obs_dim, self.task.state_dim, self.task.act_dim
        self.action_low, self.action_high = self.task.action_low, self.task.action_high
        self.max_episode_steps = max_episode_steps or MultiPushTask.max_episode_steps
        self.rngs = [seeding.np_random(None)[0] for _ in range(num_envs)]
        self.elapsed = np.zeros(num_envs, dtype=np.int64)
        self._all = np.arange(num_envs)

    def reset(self, seed: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        if seed is not None:
            self.rngs = [seeding.np_random(seed + i)[0] for i in range(self.num_envs)]
        self._reset_ids(self._all)
        return self.task.observe(), self.task.state()

    def _reset_ids(self, ids: np.ndarray) -> None:
        self.sim.reset(ids)
        self.task.reset_ids(ids, self.rngs)
        self.sim.forward(ids)
        self.elapsed[ids] = 0

    def step(self, actions: np.ndarray):
        actions = np.asarray(actions, dtype=np.float64).reshape(self.num_envs, self.num_agents, self.act_dim)
        self.task.apply_action(actions)
        self.sim.step(self.task.frame_skip)
        result = self.task.evaluate(actions)
        self.elapsed += 1
        terminated = result.terminated.astype(bool)
        truncated = (self.elapsed >= self.max_episode_steps) & ~terminated
        done = terminated | truncated
        obs, state = self.task.observe(), self.task.state()
        info: dict[str, Any] = {"is_success": result.success, "done": done, **result.extras}
        if done.any():
            ids = np.flatnonzero(done)
            info["final_obs"], info["final_state"] = obs.copy(), state.copy()
            self._reset_ids(ids)
            obs[ids], state[ids] = self.task.observe()[ids], self.task.state()[ids]
        return obs, state, result.reward.astype(np.float64), terminated, truncated, info

    def close(self) -> None:
        self.sim = None  # type: ignore[assignment]
