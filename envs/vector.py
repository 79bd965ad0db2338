"""Batched vector env: N simulations stepped together, the task's math vectorized over them.

Autoreset is SAME_STEP: a step that ends an episode returns the reset observation, and the final
observation in `info["final_obs"]` (masked by `info["_final_obs"]`) for truncation bootstrapping.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from envs.robot_env import build, task_spaces
from envs.tasks.base import Task


class BatchedVectorEnv(VectorEnv):
    metadata = {"autoreset_mode": AutoresetMode.SAME_STEP, "render_modes": []}

    def __init__(
        self,
        task_cls: type[Task],
        num_envs: int,
        max_episode_steps: int | None = None,
        nthread: int | None = None,
        **task_kwargs: Any,
    ) -> None:
        self.num_envs = num_envs
        self.sim, self.task, self.perturb = build(task_cls, num_envs, nthread, task_kwargs)
        self.max_episode_steps = max_episode_steps or task_cls.max_episode_steps
        self.task.max_episode_steps = self.max_episode_steps
        self.single_observation_space, self.single_action_space = task_spaces(self.task)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self.metadata = {**self.metadata, "render_fps": round(1.0 / self.task.control_dt)}
        self.rngs = [seeding.np_random(None)[0] for _ in range(num_envs)]
        self.elapsed = np.zeros(num_envs, dtype=np.int64)
        self._all = np.arange(num_envs)

    def carried_state(self) -> dict[str, np.ndarray]:
        """The task's state that outlives an episode (Task.carried_state), for a training checkpoint."""
        return self.task.carried_state()

    def restore_carried_state(self, state: dict[str, np.ndarray]) -> None:
        """Restore `carried_state` of a checkpoint; call before the first reset."""
        self.task.restore_carried_state(state)

    def reset(self, *, seed: int | list[int] | None = None, options: dict | None = None):
        if seed is not None:
            seeds = seed if isinstance(seed, list) else [seed + i for i in range(self.num_envs)]
            self.rngs = [seeding.np_random(s)[0] for s in seeds]
            self._np_random, self._np_random_seed = seeding.np_random(seeds[0])
        self._reset_ids(self._all)
        return self.perturb.noisy(self.task.observe(), self._all, self.rngs), {}

    def _reset_ids(self, ids: np.ndarray) -> None:
        self.sim.reset(ids)
        self.task.reset_ids(ids, self.rngs)
        if self.perturb.active:
            self.perturb.reset_ids(ids, self.rngs)
        if self.task.uses_derived_state:
            self.sim.forward(ids)
        self.elapsed[ids] = 0

    def step(self, actions):
        actions = np.asarray(actions, dtype=np.float64).reshape(self.num_envs, -1)
        if self.perturb.active:
            actions = self.perturb.delayed(actions)
        self.task.apply_action(actions)
        self.task.advance(derived=self.task.uses_derived_state)
        result = self.task.evaluate(actions)
        self.elapsed += 1
        terminated = np.asarray(result.terminated, dtype=bool)
        truncated = (self.elapsed >= self.max_episode_steps) > terminated  # a > b is a & ~b for booleans
        obs = self.task.observe()
        if self.perturb.active:
            obs = self.perturb.noisy(obs, self._all, self.rngs)
        info: dict[str, Any] = result.extras  # a fresh dict every step (Task.evaluate's contract)
        if result.success is not None:
            info["is_success"] = result.success
        done = terminated | truncated
        if done.any():
            ids = np.flatnonzero(done)
            info = self._final_info(info, obs, ids, done)
            self._reset_ids(ids)
            if self.perturb.active:
                obs[ids] = self.perturb.noisy(self.task.observe(), ids, self.rngs)[ids]
            else:
                obs[ids] = self.task.observe_ids(ids)
        return obs, np.asarray(result.reward, dtype=np.float64), terminated, truncated, info

    def _final_info(self, info: dict[str, Any], obs: np.ndarray, ids: np.ndarray,
                    done: np.ndarray) -> dict[str, Any]:
        """Gymnasium's SAME_STEP layout: final observation and info of each finished env. The info
        arrays are this step's own (fresh every step, untouched by the reset), so they are shared."""
        final_obs = np.empty(self.num_envs, dtype=object)
        for i in ids:
            final_obs[i] = obs[i].copy()
        mask = done.copy()
        final_info = {**info, **{f"_{k}": mask for k in info}}
        return {**info, "final_obs": final_obs, "_final_obs": mask, "final_info": final_info, "_final_info": mask}

    def close_extras(self, **kwargs: Any) -> None:
        self.sim = None  # type: ignore[assignment]

