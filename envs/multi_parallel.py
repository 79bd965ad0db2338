"""MultiPush as a PettingZoo ParallelEnv: one simulation, one dict entry per robot.

The batch of one: the same task code as the batched training env, so what a robot sees here is
what it saw in training.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv

from envs.multi_batch import MultiPushBatch


class MultiPushParallelEnv(ParallelEnv):
    """N robots push a box to a goal; team reward, local observations, `state()` for a central critic."""

    metadata = {"name": "MultiPush-v0", "render_modes": ["rgb_array"], "is_parallelizable": True}

    def __init__(self, n_robots: int = 2, max_episode_steps: int | None = None, render_mode: str | None = None,
                 width: int = 480, height: int = 480) -> None:
        self.batch = MultiPushBatch(1, n_robots, max_episode_steps, nthread=1)
        self.possible_agents = list(self.batch.agents)
        self.agents: list[str] = []
        obs = spaces.Box(-np.inf, np.inf, shape=(self.batch.obs_dim,), dtype=np.float32)
        act = spaces.Box(self.batch.action_low, self.batch.action_high, dtype=np.float32)
        # PettingZoo's API test needs the same space object on every call.
        self.observation_spaces = {a: obs for a in self.possible_agents}
        self.action_spaces = {a: act for a in self.possible_agents}
        self.state_space = spaces.Box(-np.inf, np.inf, shape=(self.batch.state_dim,), dtype=np.float32)
        self.metadata = {**self.metadata, "render_fps": round(1.0 / self.batch.task.control_dt)}
        self.render_mode = render_mode
        self._size = (height, width)
        self._renderer = None
        self._state = np.zeros(self.batch.state_dim, dtype=np.float32)

    @property
    def obs_fields(self) -> list[tuple[str, int]]:
        return self.batch.task.obs_fields

    def observation_space(self, agent: str) -> spaces.Box:
        return self.observation_spaces[agent]

    def action_space(self, agent: str) -> spaces.Box:
        return self.action_spaces[agent]

    def _split(self, obs: np.ndarray) -> dict[str, np.ndarray]:
        return {a: obs[0, i].copy() for i, a in enumerate(self.possible_agents)}

    def reset(self, seed: int | None = None, options: dict | None = None):
        if seed is None:
            seed = int(np.random.SeedSequence().generate_state(1)[0])
        obs, state = self.batch.reset(seed=seed)
        self._state = state[0].copy()
        self.agents = list(self.possible_agents)
        return self._split(obs), {a: {} for a in self.agents}

    def step(self, actions: dict[str, Any]):
        if not self.agents:
            raise RuntimeError("MultiPush: step() after the episode ended; call reset()")
        stacked = np.stack([np.asarray(actions[a], dtype=np.float64) for a in self.possible_agents])[None]
        _, _, reward, terminated, truncated, info = self.batch.step(stacked)
        ended = bool(info["done"][0])
        # The batch resets an ended episode at once; this view shows the final observation instead.
        obs = info["final_obs"] if ended else self.batch.task.observe()
        self._state = (info["final_state"] if ended else self.batch.task.state())[0].copy()
        agents = self.agents
        step_info = {"is_success": bool(info["is_success"][0]), "box_distance": float(info["box_distance"][0])}
        out = (self._split(obs), {a: float(reward[0]) for a in agents},
               {a: bool(terminated[0]) for a in agents}, {a: bool(truncated[0]) for a in agents},
               {a: dict(step_info) for a in agents})
        if ended:
            self.agents = []
        return out

    def state(self) -> np.ndarray:
        return self._state.copy()

    def render(self):
        if self.render_mode != "rgb_array":
            return None
        import mujoco

        if self._renderer is None:
            self._renderer = mujoco.Renderer(self.batch.sim.model, *self._size)
        self._renderer.update_scene(self.batch.sim.data(0), camera="top")
        return self._renderer.render()

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
