"""Quadruped: a 12-joint, four-legged robot tracks a commanded planar velocity (vx, vy, yaw rate).

Actions are joint position offsets from the standing pose, tracked by the position actuators' PD at
the physics rate (200 Hz) while the policy runs at 50 Hz; `action_mode="torque"` makes them joint
torques instead. The reward follows the legged-gym recipe: velocity tracking, an upright torso, low
mechanical power and smooth actions. An episode ends on a fall (torso low or tilted).
"""

from __future__ import annotations

from typing import Any

import mujoco
import numpy as np

from envs.sim import BatchSim
from envs.tasks.base import StepResult, Task
from envs.tasks.robot_task import robot_block

STAND = np.tile([0.0, 0.8, -1.6], 4)
"""Joint angles of the standing pose (abduction, hip, knee per leg), torso at about 0.24 m."""
TORQUE_LIMIT = 25.0
FALL_HEIGHT = 0.12
FALL_UPRIGHT = 0.5
"""The torso's z axis' world-z component below which the robot has fallen (tilted past 60 degrees)."""

Range = tuple[float, float] | float
"""[low, high] to draw a command from per episode, or one number: that command in every episode."""


def _number(x: object) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def command_range(name: str, value: Range) -> tuple[float, float]:
    """(low, high) of a command option; a number v is (v, v)."""
    if _number(value):
        return float(value), float(value)
    if isinstance(value, list | tuple) and len(value) == 2 and all(map(_number, value)) and value[0] <= value[1]:
        return float(value[0]), float(value[1])
    raise ValueError(f"Quadruped {name}: expected [low, high] with low <= high, or a number; got {value!r}")


def rotate_to_body(quat: np.ndarray, v: np.ndarray) -> np.ndarray:
    """World vectors (n, 3) in the frames of w-x-y-z quaternions (n, 4): R(q)^T v."""
    w, u = quat[:, :1], -quat[:, 1:]
    t = 2.0 * np.cross(u, v)
    return v + w * t + np.cross(u, t)


class QuadrupedTask(Task):
    xml = "quadruped.xml"
    frame_skip = 4  # 200 Hz physics and PD, 50 Hz policy
    max_episode_steps = 1000  # 20 s
    obs_fields = (("gravity_in_body", 3), ("linear_velocity_body", 3), ("angular_velocity_body", 3),
                  ("command", 3), ("joint_offset", 12), ("joint_velocity", 12), ("last_action", 12))
    obs_units = {"gravity_in_body": ("unit vector, torso frame", 1.0),
                 "linear_velocity_body": ("m/s, torso frame", 1.0),
                 "angular_velocity_body": ("rad/s, torso frame", 1.0), "command": ("vx m/s, vy m/s, yaw rad/s", 1.0),
                 "joint_offset": ("rad, joint position - default_pose, action order", 1.0),
                 "joint_velocity": ("rad/s, action order", 0.05), "last_action": ("action units, [-1, 1]", 1.0)}

    def __init__(self, sim: BatchSim, action_mode: str = "pd", action_scale: float = 0.5,
                 command_vx: Range = (-0.5, 1.0), command_vy: Range = (-0.3, 0.3),
                 command_yaw: Range = (-0.5, 0.5), tracking_sigma: float = 0.25,
                 weights: dict[str, float] | None = None) -> None:
        super().__init__(sim)
        self.action_mode = action_mode
        self.action_scale = action_scale
        self.ranges = np.array([command_range(name, value) for name, value in
                                (("command_vx", command_vx), ("command_vy", command_vy),
                                 ("command_yaw", command_yaw))], dtype=np.float64)
        self.tracking_sigma = tracking_sigma
        self.weights = {"linear": 1.0, "yaw": 0.5, "upright": 0.5, "energy": 2e-4, "smooth": 0.02,
                        "alive": 0.2, **(weights or {})}
        # The policy acts in [-1, 1] whatever the mode; the task scales to targets or torques.
        self.action_low = -np.ones(12, dtype=np.float32)
        self.action_high = np.ones(12, dtype=np.float32)
        self.joint_low, self.joint_high = sim.model.jnt_range[1:].T
        self.command = np.zeros((self.n, 3))
        self.last_action = np.zeros((self.n, 12))
        self.prev_action = np.zeros((self.n, 12))
        self.force = sim.bind("actuator_force")

    @classmethod
    def edit_model(cls, model: mujoco.MjModel, action_mode: str = "pd", **_: Any) -> None:
        if action_mode not in ("pd", "torque"):
            raise ValueError(f"Quadruped action_mode: expected 'pd' or 'torque', got {action_mode!r}")
        if action_mode == "torque":
            model.actuator_gainprm[:, 0] = TORQUE_LIMIT
            model.actuator_biasprm[:, :3] = 0.0
            model.actuator_ctrlrange[:] = (-1.0, 1.0)

    def describe(self) -> dict[str, Any]:
        """The ONNX metadata's view: the "pd" mode is a position mode (PD in MuJoCo's position actuators,
        kp and kv read from the model), with the joints, gains and limits a driver maps actions with."""
        info = super().describe()
        model = self.sim.model
        joints = [mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_JOINT, int(j)) for j in model.actuator_trnid[:, 0]]
        if self.action_mode == "pd":
            kp, kd = model.actuator_gainprm[:, 0].tolist(), (-model.actuator_biasprm[:, 2]).tolist()
            info["action_mode"] = "position"
            info["pd"] = {"kp": kp, "kd": kd, "default_pose": STAND.tolist(), "action_scale": self.action_scale}
        else:
            kp, kd = [0.0] * 12, [0.0] * 12
        info["robot"] = robot_block("quadruped", joints, STAND, kp, kd, [TORQUE_LIMIT] * 12, None,
                                    "position" if self.action_mode == "pd" else "torque", self.action_scale,
                                    {"action_mode": self.action_mode, "action_scale": self.action_scale})
        return info

    def reset_ids(self, ids: np.ndarray, rngs: list[np.random.Generator]) -> None:
        for i in ids:
            self.sim.qpos[i, 2] = 0.26
            self.sim.qpos[i, 3:7] = (1.0, 0.0, 0.0, 0.0)
            self.sim.qpos[i, 7:] = STAND
            self.command[i] = rngs[i].uniform(self.ranges[:, 0], self.ranges[:, 1])
        self.last_action[ids] = 0.0
        self.prev_action[ids] = 0.0
        if self.action_mode == "pd":
            self.sim.ctrl[ids] = STAND

    def apply_action(self, action: np.ndarray) -> None:
        action = np.clip(action, -1.0, 1.0)
        self.prev_action = self.last_action
        self.last_action = action
        if self.action_mode == "pd":
            self.sim.ctrl[:] = np.clip(STAND + self.action_scale * action, self.joint_low, self.joint_high)
        else:
            self.sim.ctrl[:] = action

    def _body_state(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        quat = self.sim.qpos[:, 3:7]
        gravity = rotate_to_body(quat, np.broadcast_to([0.0, 0.0, -1.0], (self.n, 3)))
        linear = rotate_to_body(quat, self.sim.qvel[:, :3])  # free joint: world-frame linear velocity
        angular = self.sim.qvel[:, 3:6]  # free joint: body-frame angular velocity
        return gravity, linear, angular

    def observe(self) -> np.ndarray:
        gravity, linear, angular = self._body_state()
        return np.concatenate([gravity, linear, angular, self.command, self.sim.qpos[:, 7:] - STAND,
                               0.05 * self.sim.qvel[:, 6:], self.last_action], axis=1).astype(np.float32)

    def evaluate(self, action: np.ndarray) -> StepResult:
        w = self.weights
        gravity, linear, angular = self._body_state()
        lin_err = np.sum(np.square(self.command[:, :2] - linear[:, :2]), axis=1)
        yaw_err = np.square(self.command[:, 2] - angular[:, 2])
        upright = -gravity[:, 2]
        power = np.sum(np.abs(self.force * self.sim.qvel[:, 6:]), axis=1)
        jerk = np.sum(np.square(self.last_action - self.prev_action), axis=1)
        reward = (w["linear"] * np.exp(-lin_err / self.tracking_sigma)
                  + w["yaw"] * np.exp(-yaw_err / self.tracking_sigma)
                  + w["upright"] * upright - w["energy"] * power - w["smooth"] * jerk + w["alive"])
        fell = (self.sim.qpos[:, 2] < FALL_HEIGHT) | (upright < FALL_UPRIGHT)
        return StepResult(reward=reward, terminated=fell, extras={
            "velocity_error": np.linalg.norm(self.command[:, :2] - linear[:, :2], axis=1),
            "forward_velocity": linear[:, 0].copy(), "power": power})
