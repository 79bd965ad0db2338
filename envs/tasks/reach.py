"""Reach: any described arm puts its end-effector site on random targets in its workspace.

Targets are drawn uniformly in the description's workspace box (`arm.workspace`: centre and half
extents, world frame) once per episode. Success is the end-effector within `success_distance`
(1 cm) of the target at the episode's last step; `distance` is in the infos at every step. Position
targets are clipped to the joint limits (and the MJCF's limits act in torque mode). The reward is
minus the distance, a precision bonus that grows within a few centimetres, and small penalties on
joint speed and on changes of action, which make the arm settle on the target.
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

WEIGHTS = {"distance": 1.0, "precision": 0.5, "joint_velocity": 1e-3, "action_rate": 0.005}
PRECISION_SCALE = 0.02
"""m: the precision bonus is exp(-(distance / this)^2)."""
OBS_UNITS = {"joint_offset": ("rad, joint position - default_pose, action order", 1.0),
             "joint_velocity": ("rad/s, action order", 0.1),
             "end_effector": ("m, world frame, from the workspace centre", 1.0),
             "target": ("m, world frame, from the workspace centre", 1.0),
             "end_effector_to_target": ("m, world frame", 1.0),
             "last_action": ("action units, [-1, 1]", 1.0)}


class ReachTask(RobotTask):
    robot_kind = "arm"
    default_robot = "arm7"
    max_episode_steps = 200  # 4 s at 50 Hz

    def __init__(self, sim: BatchSim, robot: str | None = None, action_mode: str = "position",
                 action_scale: float = 1.0, success_distance: float = 0.01, init_noise_joints: float = 0.05,
                 weights: dict[str, float] | None = None) -> None:
        super().__init__(sim, robot, action_mode, action_scale)
        arm = self.robot.arm
        assert arm is not None
        model = sim.model
        nj = len(self.robot.joints)
        self.obs_fields = (("joint_offset", nj), ("joint_velocity", nj), ("end_effector", 3), ("target", 3),
                           ("end_effector_to_target", 3), ("last_action", nj))
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
        self.reset_actions(ids)

    def observe(self) -> np.ndarray:
        q, qd = self.joint_state()
        ee = self.end_effector
        return np.concatenate([q - self.drive.default_pose, OBS_UNITS["joint_velocity"][1] * qd, ee - self.center,
                               self.target - self.center, self.target - ee, self.last_action],
                              axis=1).astype(np.float32)

    def distance(self) -> np.ndarray:
        return np.linalg.norm(self.target - self.end_effector, axis=1)

    def evaluate(self, action: np.ndarray) -> StepResult:
        w = self.weights
        dist = self.distance()
        _, qd = self.joint_state()
        reward = (-w["distance"] * dist + w["precision"] * np.exp(-np.square(dist / PRECISION_SCALE))
                  - w["joint_velocity"] * np.sum(np.square(qd), axis=1)
                  - w["action_rate"] * np.sum(np.square(self.last_action - self.prev_action), axis=1))
        return StepResult(reward=reward, terminated=np.zeros(self.n, dtype=bool),
                          success=dist < self.success_distance, extras={"distance": dist})
