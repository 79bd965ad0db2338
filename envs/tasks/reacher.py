"""Reacher: a two-link planar arm puts its fingertip on a random target, by joint torques."""

from __future__ import annotations

import numpy as np

from envs.sim import BatchSim
from envs.tasks.base import StepResult, Task

TARGET_RADIUS = 0.2
SUCCESS_DISTANCE = 0.02


class ReacherTask(Task):
    xml = "reacher.xml"
    frame_skip = 4  # 200 Hz physics, 50 Hz policy
    max_episode_steps = 200
    obs_fields = (("cos_q", 2), ("sin_q", 2), ("qvel", 2), ("fingertip_to_target", 2))

    def __init__(self, sim: BatchSim, control_cost: float = 0.01) -> None:
        super().__init__(sim)
        self.control_cost = control_cost
        self.target = sim.bind("mocap_pos")[:, 0, :2]
        self.fingertip = sim.bind("site_xpos")[:, 0, :2]

    def reset_ids(self, ids: np.ndarray, rngs: list[np.random.Generator]) -> None:
        for i in ids:
            rng = rngs[i]
            self.sim.qpos[i] = rng.uniform(-0.1, 0.1, size=2)
            self.sim.qvel[i] = rng.uniform(-0.005, 0.005, size=2)
            # Uniform over the disc the arm reaches (area-uniform radius).
            r = TARGET_RADIUS * np.sqrt(rng.uniform(0.0, 1.0))
            a = rng.uniform(-np.pi, np.pi)
            self.target[i] = (r * np.cos(a), r * np.sin(a))

    def apply_action(self, action: np.ndarray) -> None:
        self.sim.ctrl[:] = np.clip(action, self.action_low, self.action_high)

    def observe(self) -> np.ndarray:
        q = self.sim.qpos
        return np.concatenate(
            [np.cos(q), np.sin(q), self.sim.qvel, self.fingertip - self.target], axis=1
        ).astype(np.float32)

    def distance(self) -> np.ndarray:
        return np.linalg.norm(self.fingertip - self.target, axis=1)

    def evaluate(self, action: np.ndarray) -> StepResult:
        dist = self.distance()
        ctrl = np.clip(action, self.action_low, self.action_high)
        reward = -dist - self.control_cost * np.sum(np.square(ctrl), axis=1)
        return StepResult(
            reward=reward,
            terminated=np.zeros(self.n, dtype=bool),
            success=dist < SUCCESS_DISTANCE,
            extras={"distance": dist},
        )
