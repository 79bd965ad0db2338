"""Gymnasium's HalfCheetah-v5 written as a batched task, so that training steps it on mujoco.batch.

It reproduces HalfCheetah-v5 step for step (tests/test_half_cheetah_batched.py runs both side by
side): the same MJCF file, frame skip, observation, reward, reset noise and the order of random draws
from each env's generator. Only the observation dtype differs: float32 here, float64 in Gymnasium.
"""

from __future__ import annotations

from pathlib import Path

import gymnasium.envs.mujoco
import numpy as np

from envs.sim import BatchSim
from envs.tasks.base import StepResult, Task

GYMNASIUM_ASSETS = Path(gymnasium.envs.mujoco.__file__).resolve().parent / "assets"


class HalfCheetahTask(Task):
    xml = str(GYMNASIUM_ASSETS / "half_cheetah.xml")
    frame_skip = 5
    max_episode_steps = 1000
    obs_fields = (("qpos_without_rootx", 8), ("qvel", 9))

    def __init__(self, sim: BatchSim, forward_reward_weight: float = 1.0, ctrl_cost_weight: float = 0.1,
                 reset_noise_scale: float = 0.1) -> None:
        super().__init__(sim)
        self.forward_reward_weight = forward_reward_weight
        self.ctrl_cost_weight = ctrl_cost_weight
        self.reset_noise_scale = reset_noise_scale
        self.init_qpos = sim.model.qpos0.copy()
        self.x_before = np.zeros(self.n)

    def reset_ids(self, ids: np.ndarray, rngs: list[np.random.Generator]) -> None:
        scale = self.reset_noise_scale
        nq, nv = self.sim.model.nq, self.sim.model.nv
        for i in ids:
            # Gymnasium's draw order: qpos noise (uniform), then qvel noise (normal).
            self.sim.qpos[i] = self.init_qpos + rngs[i].uniform(-scale, scale, size=nq)
            self.sim.qvel[i] = scale * rngs[i].standard_normal(nv)

    def apply_action(self, action: np.ndarray) -> None:
        # MuJoCo clamps ctrl to the actuators' ctrlrange; the control cost sees the raw action, as in Gymnasium.
        self.x_before = self.sim.qpos[:, 0].copy()
        self.sim.ctrl[:] = action

    def observe(self) -> np.ndarray:
        return np.concatenate([self.sim.qpos[:, 1:], self.sim.qvel], axis=1).astype(np.float32)

    def evaluate(self, action: np.ndarray) -> StepResult:
        x_velocity = (self.sim.qpos[:, 0] - self.x_before) / self.control_dt
        forward = self.forward_reward_weight * x_velocity
        ctrl_cost = self.ctrl_cost_weight * np.sum(np.square(action), axis=1)
        return StepResult(reward=forward - ctrl_cost, terminated=np.zeros(self.n, dtype=bool),
                          extras={"x_velocity": x_velocity, "reward_forward": forward, "reward_ctrl": -ctrl_cost})
