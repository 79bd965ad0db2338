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

Options that are off by default configure the other arms of the family (Reacher-v0, envs/tasks/reacher.py):
`planar` (positions and distances in the horizontal plane only), `targets: disc` (area-uniform in the
disc inscribed in the workspace box, at its centre's height), `init_noise_velocity`, `observation` (the
fields, in order, from OBS_FIELDS), an `action` reward weight (minus the squared action, a control
cost), and `speed_limit: false` (ideal motors: torques cut to the effort limit only, no torque-speed
line; in torque mode the torque is then written once per policy step). A zero weight's term is not
computed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import mujoco
import numpy as np

from envs.robots.build import RobotModel, build_model
from envs.robots.description import RobotDescription
from envs.sim import BatchSim
from envs.tasks.base import StepResult
from envs.tasks.robot_task import RobotTask

WEIGHTS = {"distance": 1.0, "precision": 0.5, "joint_velocity": 1e-3, "action_rate": 0.005, "orientation": 0.1,
           "action": 0.0}
PRECISION_SCALE = 0.02
"""m: the precision bonus is exp(-(distance / this)^2)."""
OBS_UNITS = {"joint_offset": ("rad, joint position - default_pose, action order", 1.0),
             "joint_velocity": ("rad/s, action order", 0.1),
             "end_effector": ("m, world frame, from the workspace centre", 1.0),
             "target": ("m, world frame, from the workspace centre", 1.0),
             "end_effector_to_target": ("m, world frame", 1.0),
             "last_action": ("action units, [-1, 1]", 1.0),
             "orientation_error": ("rad, rotation vector from the end effector's orientation to the target's, "
                                   "world frame", 1.0),
             "cos_q": ("cos of joint position, action order", 1.0),
             "sin_q": ("sin of joint position, action order", 1.0),
             "qvel": ("rad/s, action order", 1.0),
             "fingertip_to_target": ("m, world frame, end effector minus target", 1.0)}
DEFAULT_OBSERVATION = ("joint_offset", "joint_velocity", "end_effector", "target", "end_effector_to_target",
                       "last_action")
TARGETS = ("box", "disc")


def _columns(index: np.ndarray) -> slice | np.ndarray:
    """A slice where the indices are consecutive (a view, no copy), else the indices."""
    if len(index) and np.array_equal(index, np.arange(index[0], index[0] + len(index))):
        return slice(int(index[0]), int(index[0]) + len(index))
    return index


def _joints(task: ReachTask) -> int:
    return len(task.robot.joints)


def _axes(task: ReachTask) -> int:
    return task.axes


ObsPart = Callable[["ReachTask", np.ndarray, np.ndarray], np.ndarray]
OBS_FIELDS: dict[str, tuple[Callable[[ReachTask], int], ObsPart]] = {
    "joint_offset": (_joints, lambda t, q, qd: q - t.drive.default_pose),
    "joint_velocity": (_joints, lambda t, q, qd: OBS_UNITS["joint_velocity"][1] * qd),
    "end_effector": (_axes, lambda t, q, qd: t.end_effector - t.center),
    "target": (_axes, lambda t, q, qd: t.target - t.center),
    "end_effector_to_target": (_axes, lambda t, q, qd: t.target - t.end_effector),
    "last_action": (_joints, lambda t, q, qd: t.last_action),
    "orientation_error": (lambda t: 3, lambda t, q, qd: t.orientation_error()),
    "cos_q": (_joints, lambda t, q, qd: np.cos(q)),
    "sin_q": (_joints, lambda t, q, qd: np.sin(q)),
    "qvel": (_joints, lambda t, q, qd: qd),
    "fingertip_to_target": (_axes, lambda t, q, qd: t.end_effector - t.target),
}
"""Observation fields a reach task can be given: (size, value from the task and its joint state)."""


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
    marker_size = 0.015
    """m: radius of the target's sphere (drawn only)."""
    marker_rgba = (0.9, 0.2, 0.2, 0.8)

    def __init__(self, sim: BatchSim, robot: str | None = None, action_mode: str = "position",
                 action_scale: float = 1.0, success_distance: float = 0.01, init_noise_joints: float = 0.05,
                 weights: dict[str, float] | None = None, orientation: bool = False,
                 orientation_range: float = 0.5, success_angle: float = 0.1, planar: bool = False,
                 targets: str = "box", init_noise_velocity: float = 0.0, observation: Sequence[str] | None = None,
                 speed_limit: bool = True) -> None:
        super().__init__(sim, robot, action_mode, action_scale)
        arm = self.robot.arm
        assert arm is not None
        model = sim.model
        if targets not in TARGETS:
            raise ValueError(f"Reach targets: expected one of {list(TARGETS)}, got {targets!r}")
        self.targets = targets
        self.axes = 2 if planar else 3
        """Components of every position: (x, y) for a planar arm, else (x, y, z)."""
        self.init_noise_velocity = float(init_noise_velocity)
        self.speed_limit = bool(speed_limit)
        if not self.speed_limit:  # the torque-speed line at an infinite no-load speed is the effort limit alone
            self.drive.velocity_limit = np.full(len(self.robot.joints), np.inf)
        self.ideal_torque = self.action_mode == "torque" and not self.speed_limit
        """Ideal motors in torque mode: the torque holds over the policy step, written once (advance)."""
        self.ctrl_per_action = self.drive.effort / self.drive.gear
        """Control input of one unit of torque action (effort limit / gear), for ideal motors."""
        self._unit_ctrl = bool(np.all(self.ctrl_per_action == 1.0))
        whole = np.array_equal(self.drive.ctrl_index, np.arange(model.nu))
        self._ctrl_columns = slice(None) if whole else self.drive.ctrl_index
        names = tuple(observation) if observation is not None else (
            DEFAULT_OBSERVATION + (("orientation_error",) if orientation else ()))
        for name in names:
            if name not in OBS_FIELDS:
                raise ValueError(f"Reach observation: unknown field {name!r} (fields: {', '.join(OBS_FIELDS)})")
        if "orientation_error" in names and not orientation:
            raise ValueError("Reach observation: orientation_error needs orientation: true")
        self.obs_fields = tuple((name, OBS_FIELDS[name][0](self)) for name in names)
        self._obs_parts = [OBS_FIELDS[name][1] for name in names]
        self._qpos_columns = _columns(self.drive.qpos_index)
        self._qvel_columns = _columns(self.drive.qvel_index)
        self._joint_views = ((sim.qpos[:, self._qpos_columns], sim.qvel[:, self._qvel_columns])
                             if isinstance(self._qpos_columns, slice) and isinstance(self._qvel_columns, slice)
                             else None)
        """Live views of the joints' positions and velocities where their columns are contiguous."""
        self.obs_units = OBS_UNITS
        unknown = sorted(set(weights or {}) - set(WEIGHTS))
        if unknown:
            raise ValueError(f"Reach weights.{unknown[0]}: unknown reward term (terms: {', '.join(WEIGHTS)})")
        self.weights = {**WEIGHTS, **(weights or {})}
        self.success_distance = success_distance
        self.init_noise_joints = init_noise_joints
        self.center = np.asarray(arm.center)[:self.axes]
        self.half_extent = np.asarray(arm.half_extent)[:self.axes]
        self.target_radius = float(min(arm.half_extent[:2]))
        """m: radius of the disc `targets: disc` draws from."""
        self._center_xy = (float(arm.center[0]), float(arm.center[1]))
        site = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SITE, arm.end_effector)
        self.end_effector = sim.bind("site_xpos")[:, site, :self.axes]
        mocap = model.body_mocapid[mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, "reach_target")]
        self.target = sim.bind("mocap_pos")[:, mocap, :self.axes]
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
            body.add_geom(type=mujoco.mjtGeom.mjGEOM_SPHERE, size=[cls.marker_size, 0, 0], contype=0, conaffinity=0,
                          rgba=list(cls.marker_rgba), mass=0.0)

        return build_model(robot, edit=add_target)

    def reset_ids(self, ids: np.ndarray, rngs: list[np.random.Generator]) -> None:
        nj = len(self.robot.joints)
        noise = np.empty((len(ids), nj))
        for k, i in enumerate(ids):
            rng = rngs[i]
            noise[k] = rng.uniform(-self.init_noise_joints, self.init_noise_joints, size=nj)
            if self.init_noise_velocity:
                self.sim.qvel[i, self._qvel_columns] = rng.uniform(-self.init_noise_velocity,
                                                                   self.init_noise_velocity, size=nj)
            if self.targets == "disc":  # area-uniform: the radius is the square root of a uniform draw
                r = self.target_radius * np.sqrt(rng.uniform(0.0, 1.0))
                a = rng.uniform(-np.pi, np.pi)
                self.target[i, :2] = (self._center_xy[0] + r * np.cos(a), self._center_xy[1] + r * np.sin(a))
                self.target[i, 2:] = self.center[2:]  # at the centre's height (nothing for a planar arm)
            else:
                self.target[i] = self.center + rng.uniform(-self.half_extent, self.half_extent)
            if self.orientation:
                axis = rng.normal(size=3)
                turn = _axis_angle_matrix(axis / np.linalg.norm(axis), rng.uniform(0.0, self.orientation_range))
                self.target_rot[i] = turn @ self.default_rot
                mujoco.mju_mat2Quat(self.target_quat[i], self.target_rot[i].ravel())
        # One clip for the batch: each simulation's draws above keep their order.
        self.sim.qpos[np.asarray(ids)[:, None], self.drive.qpos_index] = np.clip(
            self.drive.default_pose + noise, self.drive.low, self.drive.high)
        self.reset_actions(ids)

    def apply_action(self, action: np.ndarray) -> None:
        super().apply_action(action)
        if self.ideal_torque:  # |action| <= 1: within the effort limit
            self.sim.ctrl[:, self._ctrl_columns] = (self.last_action if self._unit_ctrl
                                                    else self.last_action * self.ctrl_per_action)

    def advance(self, derived: bool = True) -> None:
        if not self.ideal_torque:
            super().advance(derived)
            return
        self.torque = self.torque_command
        self.sim.step(self.frame_skip, derived=derived)

    def describe(self) -> dict[str, Any]:
        info = super().describe()
        if not self.speed_limit:  # a driver must not expect the policy to know a speed limit
            info["robot"]["velocity_limit"] = None
        return info

    def joint_state(self) -> tuple[np.ndarray, np.ndarray]:
        """(n, joints) positions and velocities in action order; live views (read only) where the joints'
        columns are contiguous, as the observation reads them every step."""
        if self._joint_views is not None:
            return self._joint_views
        return self.sim.qpos[:, self.drive.qpos_index], self.sim.qvel[:, self.drive.qvel_index]

    def observe(self) -> np.ndarray:
        q, qd = self.joint_state()
        return np.concatenate([part(self, q, qd) for part in self._obs_parts], axis=1).astype(np.float32)

    def orientation_error(self) -> np.ndarray:
        """(n, 3) rotation vectors (world frame) that turn the end effector's orientation into the target's."""
        rot = self.end_effector_rot.reshape(self.n, 3, 3)
        return rotation_vector(self.target_rot @ np.transpose(rot, (0, 2, 1)))

    def distance(self) -> np.ndarray:
        return np.linalg.norm(self.target - self.end_effector, axis=1)

    def evaluate(self, action: np.ndarray) -> StepResult:
        w = self.weights
        dist = self.distance()
        reward = -w["distance"] * dist
        if w["precision"]:
            reward = reward + w["precision"] * np.exp(-np.square(dist / PRECISION_SCALE))
        if w["joint_velocity"]:
            reward = reward - w["joint_velocity"] * np.sum(np.square(self.joint_state()[1]), axis=1)
        if w["action_rate"]:
            reward = reward - w["action_rate"] * np.sum(np.square(self.last_action - self.prev_action), axis=1)
        if w["action"]:
            reward = reward - w["action"] * np.sum(np.square(self.last_action), axis=1)
        success = dist < self.success_distance
        extras = {"distance": dist}
        if self.orientation:
            angle = np.linalg.norm(self.orientation_error(), axis=1)
            reward = reward - w["orientation"] * angle
            success = success & (angle < self.success_angle)
            extras["orientation_error"] = angle
        return StepResult(reward=reward, terminated=np.zeros(self.n, dtype=bool), success=success, extras=extras)
