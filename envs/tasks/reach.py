"""Reach: any described arm puts its end-effector site on random targets in its workspace.

Targets are drawn uniformly in the description's workspace box (`arm.workspace`: centre and half
extents, world frame) once per episode. Success is the end-effector within `success_distance`
(1 cm) of the target at the episode's last step; `distance` is in the infos at every step. Position
targets are clipped to the joint limits (and the MJCF's limits act in torque mode). The reward is
minus the distance, a precision bonus that grows within a few centimetres, and small penalties on
joint speed and on changes of action, which make the arm settle on the target.

With `orientation: true` each target also has an orientation: the end-effector site's orientation in
the default pose turned by a uniform angle of up to `orientation_range` rad about a uniformly random
axis. The observation then ends with the rotation vector from the site's orientation to the target's
(world frame), the reward has an `orientation` term (minus that angle), and success also needs the
angle within `success_angle`.
"""

from __future__ import annotations

from typing import Any

import mujoco
import numpy as np

from envs.robots.build import RobotModel, build_model
from envs.robots.description import RobotDescription
from envs.sim import BatchSim
from envs.tasks.base import StepResult
from envs.tasks.robot_task import RobotTask

WEIGHTS = {"distance": 1.0, "precision": 0.5, "joint_velocity": 1e-3, "action_rate": 0.005, "orientation": 0.1}
PRECISION_SCALE = 0.02
"""m: the precision bonus is exp(-(distance / this)^2)."""
OBS_UNITS = {"joint_offset": ("rad, joint position - default_pose, action order", 1.0),
             "joint_velocity": ("rad/s, action order", 0.1),
             "end_effector": ("m, world frame, from the workspace centre", 1.0),
             "target": ("m, world frame, from the workspace centre", 1.0),
             "end_effector_to_target": ("m, world frame", 1.0),
             "last_action": ("action units, [-1, 1]", 1.0),
             "orientation_error": ("rad, rotation vector from the end effector's orientation to the target's, "
                                   "world frame", 1.0)}


def rotation_vector(rot: np.ndarray) -> np.ndarray:
    """(n, 3) axis times angle of rotation matrices (n, 3, 3), angles in [0, pi]."""
    skew = 0.5 * np.stack([rot[:, 2, 1] - rot[:, 1, 2], rot[:, 0, 2] - rot[:, 2, 0], rot[:, 1, 0] - rot[:, 0, 1]],
                          axis=1)
    cos = np.clip((np.trace(rot, axis1=1, axis2=2) - 1.0) / 2.0, -1.0, 1.0)
    angle = np.arccos(cos)
    sin = np.linalg.norm(skew, axis=1)
    out = skew * np.where(sin > 1e-9, angle / np.maximum(sin, 1e-12), 1.0)[:, None]
    near_pi = (sin < 1e-6) & (cos < 0)
    for i in np.flatnonzero(near_pi):  # a half turn: the axis is the column of R + I with the largest norm
        m = rot[i] + np.eye(3)
        axis = m[:, np.argmax(np.linalg.norm(m, axis=0))]
        out[i] = np.pi * axis / np.linalg.norm(axis)
    return out


def _axis_angle_matrix(axis: np.ndarray, angle: float) -> np.ndarray:
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * k @ k


class ReachTask(RobotTask):
    robot_kind = "arm"
    default_robot = "arm7"
    max_episode_steps = 200  # 4 s at 50 Hz

    def __init__(self, sim: BatchSim, robot: str | None = None, action_mode: str = "position",
                 action_scale: float = 1.0, success_distance: float = 0.01, init_noise_joints: float = 0.05,
                 weights: dict[str, float] | None = None, orientation: bool = False,
                 orientation_range: float = 0.5, success_angle: float = 0.1) -> None:
        super().__init__(sim, robot, action_mode, action_scale)
        arm = self.robot.arm
        assert arm is not None
        model = sim.model
        nj = len(self.robot.joints)
        self.obs_fields = (("joint_offset", nj), ("joint_velocity", nj), ("end_effector", 3), ("target", 3),
                           ("end_effector_to_target", 3), ("last_action", nj)) + (
                           (("orientation_error", 3),) if orientation else ())
        self.obs_units = OBS_UNITS
        unknown = sorted(set(weights or {}) - set(WEIGHTS))
        if unknown:
            raise ValueError(f"Reach weights.{unknown[0]}: unknown reward term (terms: {', '.join(WEIGHTS)})")
        self.weights = {**WEIGHTS, **(weights or {})}
        self.success_distance = success_distance
        self.init_noise_joints = init_noise_joints
        self.center = np.asarray(arm.center)
        self.half_extent = np.asarray(arm.half_extent)
        site = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SITE, arm.end_effector)
        self.end_effector = sim.bind("site_xpos")[:, site]
        mocap = model.body_mocapid[mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, "reach_target")]
        self.target = sim.bind("mocap_pos")[:, mocap]
        self.orientation = bool(orientation)
        self.orientation_range = float(orientation_range)
        self.success_angle = float(success_angle)
        self.end_effector_rot = sim.bind("site_xmat")[:, site]
        self.target_quat = sim.bind("mocap_quat")[:, mocap]
        self.target_rot = np.tile(np.eye(3), (self.n, 1, 1))
        data = mujoco.MjData(model)
        data.qpos[self.drive.qpos_index] = self.drive.default_pose
        mujoco.mj_kinematics(model, data)
        self.default_rot = data.site_xmat[site].reshape(3, 3).copy()
        """The end effector's orientation in the default pose: targets are turned from it."""

    @classmethod
    def build_robot_model(cls, robot: RobotDescription, **task_kwargs: Any) -> RobotModel:
        """The arm with a visible target (a mocap sphere that collides with nothing)."""
        def add_target(spec: mujoco.MjSpec) -> None:
            body = spec.worldbody.add_body(name="reach_target", mocap=True, pos=list(robot.arm.center))
            body.add_geom(type=mujoco.mjtGeom.mjGEOM_SPHERE, size=[0.015, 0, 0], contype=0, conaffinity=0,
                          rgba=[0.9, 0.2, 0.2, 0.8], mass=0.0)

        return build_model(robot, edit=add_target)

    def reset_ids(self, ids: np.ndarray, rngs: list[np.random.Generator]) -> None:
        nj = len(self.robot.joints)
        for i in ids:
            rng = rngs[i]
            self.sim.qpos[i, self.drive.qpos_index] = np.clip(
                self.drive.default_pose + rng.uniform(-self.init_noise_joints, self.init_noise_joints, size=nj),
                self.drive.low, self.drive.high)
            self.target[i] = self.center + rng.uniform(-self.half_extent, self.half_extent)
            if self.orientation:
                axis = rng.normal(size=3)
                turn = _axis_angle_matrix(axis / np.linalg.norm(axis), rng.uniform(0.0, self.orientation_range))
                self.target_rot[i] = turn @ self.default_rot
                mujoco.mju_mat2Quat(self.target_quat[i], self.target_rot[i].ravel())
        self.reset_actions(ids)

    def observe(self) -> np.ndarray:
        q, qd = self.joint_state()
        ee = self.end_effector
        parts = [q - self.drive.default_pose, OBS_UNITS["joint_velocity"][1] * qd, ee - self.center,
                 self.target - self.center, self.target - ee, self.last_action]
        if self.orientation:
            parts.append(self.orientation_error())
        return np.concatenate(parts, axis=1).astype(np.float32)

    def orientation_error(self) -> np.ndarray:
        """(n, 3) rotation vectors (world frame) that turn the end effector's orientation into the target's."""
        rot = self.end_effector_rot.reshape(self.n, 3, 3)
        return rotation_vector(self.target_rot @ np.transpose(rot, (0, 2, 1)))

    def distance(self) -> np.ndarray:
        return np.linalg.norm(self.target - self.end_effector, axis=1)

    def evaluate(self, action: np.ndarray) -> StepResult:
        w = self.weights
        dist = self.distance()
        _, qd = self.joint_state()
        reward = (-w["distance"] * dist + w["precision"] * np.exp(-np.square(dist / PRECISION_SCALE))
                  - w["joint_velocity"] * np.sum(np.square(qd), axis=1)
                  - w["action_rate"] * np.sum(np.square(self.last_action - self.prev_action), axis=1))
        success = dist < self.success_distance
        extras = {"distance": dist}
        if self.orientation:
            angle = np.linalg.norm(self.orientation_error(), axis=1)
            reward = reward - w["orientation"] * angle
            success = success & (angle < self.success_angle)
            extras["orientation_error"] = angle
        return StepResult(reward=reward, terminated=np.zeros(self.n, dtype=bool), success=success, extras=extras)
