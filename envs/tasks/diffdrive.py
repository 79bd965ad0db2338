"""DiffDrive: a two-wheeled robot drives to a random goal on a plane, commanding wheel velocities.

An episode succeeds (and ends) when the chassis centre is within 10 cm of the goal. The reward is
the progress toward the goal each step, a bonus on arrival and a small cost per step, so that the
shortest drive earns most.
"""

from __future__ import annotations

import numpy as np

from envs.sim import BatchSim
from envs.tasks.base import StepResult, Task

SUCCESS_DISTANCE = 0.1


def yaw_of(quat: np.ndarray) -> np.ndarray:
    """Heading of (n, 4) w-x-y-z quaternions about the world z axis."""
    w, x, y, z = quat.T
    return np.arctan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))


WHEEL_SPEED = 20.0
"""rad/s: the motors' range. Wheel speeds enter the observation divided by it (about +-1); obs_units says
so (scale 1/20), so a robot's driver scales its encoders' rad/s the same."""


class DiffDriveTask(Task):
    xml = "diffdrive.xml"
    frame_skip = 10  # 200 Hz physics, 20 Hz policy
    max_episode_steps = 200
    obs_fields = (("goal_in_body", 2), ("goal_distance", 1), ("body_velocity", 2), ("yaw_rate", 1),
                  ("wheel_velocity", 2))
    obs_units = {"goal_in_body": ("m, body frame", 1.0), "goal_distance": ("m", 1.0),
                 "body_velocity": ("m/s, body frame", 1.0), "yaw_rate": ("rad/s", 1.0),
                 "wheel_velocity": ("rad/s, left then right", 1.0 / WHEEL_SPEED)}

    def __init__(self, sim: BatchSim, goal_radius: tuple[float, float] = (0.5, 2.0),
                 progress_weight: float = 10.0, arrival_bonus: float = 10.0, time_cost: float = 0.05) -> None:
        super().__init__(sim)
        low, high = goal_radius
        if not 0 <= low <= high:
            raise ValueError(f"DiffDrive goal_radius: expected [low, high] with 0 <= low <= high, got {goal_radius!r}")
        self.goal_radius = (float(low), float(high))
        self.progress_weight = progress_weight
        self.arrival_bonus = arrival_bonus
        self.time_cost = time_cost
        self.goal = sim.bind("mocap_pos")[:, 0, :2]
        self.last_distance = np.zeros(self.n)

    def reset_ids(self, ids: np.ndarray, rngs: list[np.random.Generator]) -> None:
        low, high = self.goal_radius
        for i in ids:
            rng = rngs[i]
            heading = rng.uniform(-np.pi, np.pi)
            self.sim.qpos[i, 3:7] = (np.cos(heading / 2), 0.0, 0.0, np.sin(heading / 2))
            # Area-uniform over the annulus between the two radii.
            r = np.sqrt(rng.uniform(low**2, high**2))
            a = rng.uniform(-np.pi, np.pi)
            self.goal[i] = (r * np.cos(a), r * np.sin(a))
            self.last_distance[i] = np.linalg.norm(self.goal[i] - self.sim.qpos[i, :2])

    def apply_action(self, action: np.ndarray) -> None:
        self.sim.ctrl[:] = np.clip(action, self.action_low, self.action_high)

    def _goal_in_body(self) -> tuple[np.ndarray, np.ndarray]:
        yaw = yaw_of(self.sim.qpos[:, 3:7])
        d = self.goal - self.sim.qpos[:, :2]
        c, s = np.cos(yaw), np.sin(yaw)
        return np.stack([c * d[:, 0] + s * d[:, 1], -s * d[:, 0] + c * d[:, 1]], axis=1), yaw

    def observe(self) -> np.ndarray:
        goal, yaw = self._goal_in_body()
        dist = np.linalg.norm(goal, axis=1, keepdims=True)
        v = self.sim.qvel[:, :2]  # world frame for a free joint
        c, s = np.cos(yaw), np.sin(yaw)
        v_body = np.stack([c * v[:, 0] + s * v[:, 1], -s * v[:, 0] + c * v[:, 1]], axis=1)
        yaw_rate = self.sim.qvel[:, 5:6]  # body frame; the chassis stays level
        # Wheel speeds are scaled to about +-1 so that the obs is of one magnitude throughout.
        wheels = self.sim.qvel[:, 6:8] / WHEEL_SPEED
        return np.concatenate([goal, dist, v_body, yaw_rate, wheels], axis=1).astype(np.float32)

    def evaluate(self, action: np.ndarray) -> StepResult:
        dist = np.linalg.norm(self.goal - self.sim.qpos[:, :2], axis=1)
        arrived = dist < SUCCESS_DISTANCE
        reward = (self.progress_weight * (self.last_distance - dist) + self.arrival_bonus * arrived
                  - self.time_cost)
        self.last_distance = dist.copy()  # reset_ids rewrites it; `dist` goes out as the final info
        return StepResult(reward=reward, terminated=arrived, success=arrived, extras={"distance": dist})
