"""The single-robot Gymnasium env: a task run on a batch of one simulation."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from envs.sim import BatchSim, threads_for
from envs.sim2real import Perturbations, SimToReal
from envs.tasks.base import Task


def task_spaces(task: Task) -> tuple[spaces.Box, spaces.Box]:
    obs = spaces.Box(-np.inf, np.inf, shape=(task.obs_dim,), dtype=np.float32)
    act = spaces.Box(task.action_low, task.action_high, dtype=np.float32)
    return obs, act


def build(task_cls: type[Task], nsim: int, nthread: int | None,
          kwargs: dict[str, Any]) -> tuple[BatchSim, Task, Perturbations]:
    """Simulations, task and sim-to-real perturbations from an env's keyword arguments."""
    kwargs = dict(kwargs)
    options = SimToReal.pop_from(kwargs)
    model = task_cls.build_model(**kwargs)
    options.edit_model(model)
    task_cls.edit_model(model, **kwargs)
    nstep = options.frame_skip or task_cls.frame_skip
    sim = BatchSim(model, nsim, nthread or threads_for(model, nsim, nstep))
    task = task_cls(sim, **kwargs)
    if options.frame_skip is not None:
        task.set_frame_skip(options.frame_skip)
    return sim, task, Perturbations(options, sim, len(task.action_low), task.obs_dim)


class RobotEnv(gym.Env):
    """Gymnasium env over one simulation of a robotrl task (time limit from the registration)."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 50}

    def __init__(
        self,
        task_cls: type[Task],
        render_mode: str | None = None,
        width: int = 480,
        height: int = 480,
        **task_kwargs: Any,
    ) -> None:
        self.sim, self.task, self.perturb = build(task_cls, 1, 1, task_kwargs)
        self.observation_space, self.action_space = task_spaces(self.task)
        self.metadata = {**self.metadata, "render_fps": round(1.0 / self.task.control_dt)}
        self.render_mode = render_mode
        self._size = (height, width)
        self._renderer = None
        self._ids = np.zeros(1, dtype=np.int64)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        rngs = [self.np_random]
        self.sim.reset(self._ids)
        self.task.reset_ids(self._ids, rngs)
        self.perturb.reset_ids(self._ids, rngs)
        self.sim.forward(self._ids)
        return self.perturb.noisy(self.task.observe(), self._ids, rngs)[0], {}

    def step(self, action):
        action = self.perturb.delayed(np.asarray(action, dtype=np.float64).reshape(1, -1))
        self.task.apply_action(action)
        # As the vector env steps it: a task that declares it reads no derived state evaluates on what
        # mj_step's own forward pass left (one physics step old), so training, the viewer, a video and SB3's
        # side score the same reward.
        self.task.advance(derived=self.task.uses_derived_state)
        result = self.task.evaluate(action)
        info: dict[str, Any] = {k: float(v[0]) for k, v in result.extras.items()}
        if result.success is not None:
            info["is_success"] = bool(result.success[0])
        obs = self.perturb.noisy(self.task.observe(), self._ids, [self.np_random])
        return obs[0], float(result.reward[0]), bool(result.terminated[0]), False, info

    def render(self):
        if self.render_mode != "rgb_array":
            return None
        import mujoco

        if self._renderer is None:
            self._renderer = mujoco.Renderer(self.sim.model, *self._size)
        self._renderer.update_scene(self.sim.data(0), camera=-1)
        return self._renderer.render()

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
