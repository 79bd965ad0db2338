"""Joint torques from a description: PD around position targets, or torques, cut to each motor's envelope.

The task computes PD itself at the physics rate (not MuJoCo position actuators), so the torque and
position action modes share one model of motor actuators, and the same limits act on both: the
effort limit, and the velocity-dependent limit of an electric motor (the torque that drives a joint
further along its velocity falls linearly from the effort limit at rest to zero at the no-load speed,
`velocity_limit`; braking torque keeps the full effort limit).
"""

from __future__ import annotations

import mujoco
import numpy as np

from envs.robots.description import RobotDescription


class JointDrive:
    """Index maps and per-joint constants of a description's actuated joints in a compiled model."""

    def __init__(self, robot: RobotDescription, model: mujoco.MjModel) -> None:
        joints = [mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, j) for j in robot.joints]
        actuators = [mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_ACTUATOR, a) for a in robot.actuators]
        self.qpos_index = model.jnt_qposadr[joints].copy()
        self.qvel_index = model.jnt_dofadr[joints].copy()
        self.ctrl_index = np.asarray(actuators)
        self.gear = model.actuator_gear[actuators, 0].copy()
        self.kp = np.asarray(robot.kp)
        self.kd = np.asarray(robot.kd)
        self.effort = np.asarray(robot.effort_limit)
        self.velocity_limit = np.asarray(robot.velocity_limit)
        self.default_pose = np.asarray(robot.default_pose)
        limited = model.jnt_limited[joints].astype(bool)
        self.low = np.where(limited, model.jnt_range[joints, 0], -np.inf)
        self.high = np.where(limited, model.jnt_range[joints, 1], np.inf)

    def limit(self, torque: np.ndarray, qvel: np.ndarray) -> np.ndarray:
        """Torques (n, joints) cut to the motors' torque-speed envelope at joint velocities `qvel`."""
        available = self.effort * np.clip(1.0 - np.abs(qvel) / self.velocity_limit, 0.0, 1.0)
        bound = np.where(torque * qvel > 0.0, available, self.effort)
        return np.clip(torque, -bound, bound)

    def pd(self, target: np.ndarray, qpos: np.ndarray, qvel: np.ndarray) -> np.ndarray:
        """PD torques toward joint position targets, before the limits."""
        return self.kp * (target - qpos) - self.kd * qvel

    def apply(self, ctrl: np.ndarray, torque: np.ndarray, qvel: np.ndarray) -> np.ndarray:
        """Write limited torques into the simulations' controls; returns the torques applied."""
        torque = self.limit(torque, qvel)
        ctrl[:, self.ctrl_index] = torque / self.gear
        return torque
