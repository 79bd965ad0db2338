"""The part every task over a robot description shares: the model, the actions, the controller.

A task built on `RobotTask` reads its robot from `robot=<description path or shipped name>` in the env
kwargs. Actions are in [-1, 1] per joint in the description's order; `action_mode` says what they
mean: `position` (default), a joint target `default_pose + action_scale * action` clipped to the joint
limits and tracked by the description's PD at the physics rate, or `torque`, `action * effort_limit`.
Either way the torque passes the motor's torque-speed envelope (envs.robots.drive) before it reaches
the simulation, so one model of motor actuators serves both modes.

A description with `actuator: position` (MuJoCo position servos are the robot's PD) is driven through
them: the task writes the joint targets into the controls once per policy step, or, in torque mode, the
action, the servos turned into motors whose unit control is the effort limit; either way the physics
steps run in one call and the torque is what the actuators applied.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import mujoco
import numpy as np

from envs.robots.build import RobotModel, build_model, servos_to_motors
from envs.robots.description import RobotDescription, load_robot
from envs.robots.drive import JointDrive
from envs.sim import BatchSim
from envs.tasks.base import Task

ACTION_MODES = ("position", "torque")


class RobotTask(Task):
    """A Task whose model, action layout, gains and limits come from a robot description."""

    xml = ""
    frame_skip = 4
    robot_kind = ""
    """The description kind this task runs ("legged" or "arm")."""
    default_robot = ""
    """A shipped robot's name used when the kwargs name none."""

    def __init__(self, sim: BatchSim, robot: str | None = None, action_mode: str = "position",
                 action_scale: float = 0.5) -> None:
        super().__init__(sim)
        self.robot = self.load(robot)
        self.robot_arg = str(robot or self.default_robot)
        """The `robot` kwarg as given (a shipped name, a path, menagerie:...): what rebuilds this robot."""
        # The description's control rate whatever the physics timestep (a sim-to-real `timestep` keeps it).
        self.frame_skip = max(1, round(1.0 / (self.robot.control_hz * float(sim.model.opt.timestep))))
        self.action_mode = _mode(action_mode)
        self.action_scale = float(action_scale)
        self.drive = JointDrive(self.robot, sim.model)
        nj = len(self.robot.joints)
        self.action_low = -np.ones(nj, dtype=np.float32)
        self.action_high = np.ones(nj, dtype=np.float32)
        self.default_pose = tuple(self.robot.default_pose)
        self.pd_kp, self.pd_kd = tuple(self.robot.kp), tuple(self.robot.kd)
        self.joint_target = np.tile(self.drive.default_pose, (self.n, 1))
        self.torque_command = np.zeros((self.n, nj))
        self.torque = np.zeros((self.n, nj))
        """The torques of the last physics step, after the limits."""
        self.last_action = np.zeros((self.n, nj))
        self.prev_action = np.zeros((self.n, nj))
        self.servo = self.robot.actuator == "position"
        self.actuator_force = sim.bind("actuator_force")

    @classmethod
    def load(cls, robot: str | None) -> RobotDescription:
        """The task's description, checked to be of the kind the task runs."""
        description = load_robot(robot or cls.default_robot)
        if description.kind != cls.robot_kind:
            raise ValueError(f"{description.source}: kind: {cls.__name__} runs '{cls.robot_kind}' robots, "
                             f"got {description.kind!r}")
        return description

    @classmethod
    def build_robot_model(cls, robot: RobotDescription, **task_kwargs: Any) -> RobotModel:
        """The compiled model with what the task adds (floor, sensors, terrain)."""
        return build_model(robot)

    @classmethod
    def build_model(cls, robot: str | None = None, **task_kwargs: Any) -> mujoco.MjModel:
        mode = _mode(task_kwargs.get("action_mode", "position"))
        description = cls.load(robot)
        model = cls.build_robot_model(description, **task_kwargs).model
        if description.actuator == "position" and mode == "torque":
            servos_to_motors(model, description)
        return model

    def reset_actions(self, ids: np.ndarray) -> None:
        """Zero action history and hold the default pose in simulations `ids`."""
        self.last_action[ids] = 0.0
        self.prev_action[ids] = 0.0
        self.joint_target[ids] = self.drive.default_pose
        self.torque_command[ids] = 0.0

    def apply_action(self, action: np.ndarray) -> None:
        action = np.clip(action, -1.0, 1.0)
        self.prev_action = self.last_action
        self.last_action = action
        if self.action_mode == "position":
            self.joint_target = np.clip(self.drive.default_pose + self.action_scale * action, self.drive.low,
                                  self.drive.high)
        else:
            self.torque_command = action * self.drive.effort

    def advance(self, derived: bool = True) -> None:
        """The controller at the physics rate: PD (or the held torque) cut to the motor envelope each step."""
        drive, sim = self.drive, self.sim
        if self.servo:
            sim.ctrl[:, drive.ctrl_index] = self.joint_target if self.action_mode == "position" else self.last_action
            sim.step(self.frame_skip, derived=derived)
            # Gear 1 (a description check). np.take copies in C order, so sums over a row (power) add in the
            # order they did when this was Quadruped-v0's own task (a fancy index gives F order).
            self.torque = np.take(self.actuator_force, drive.ctrl_index, axis=1)
            return
        for k in range(self.frame_skip):
            qvel = sim.qvel[:, drive.qvel_index]
            if self.action_mode == "position":
                command = drive.pd(self.joint_target, sim.qpos[:, drive.qpos_index], qvel)
            else:
                command = self.torque_command
            self.torque = drive.apply(sim.ctrl, command, qvel)
            sim.step(1, derived=derived and k == self.frame_skip - 1)

    def joint_state(self) -> tuple[np.ndarray, np.ndarray]:
        """(n, joints) positions and velocities in action order."""
        return self.sim.qpos[:, self.drive.qpos_index], self.sim.qvel[:, self.drive.qvel_index]

    def describe(self) -> dict[str, Any]:
        """The base description plus what a driver needs to map actions to motors (see envs.describe)."""
        info = super().describe()
        r = self.robot
        info["action_mode"] = self.action_mode
        info["pd"] = ({"kp": list(r.kp), "kd": list(r.kd), "default_pose": list(r.default_pose),
                       "action_scale": self.action_scale} if self.action_mode == "position" else None)
        info["robot"] = robot_block(r.name, r.joints, r.default_pose, r.kp, r.kd, r.effort_limit, r.velocity_limit,
                                    self.action_mode, self.action_scale,
                                    {"robot": self.robot_arg, "action_mode": self.action_mode,
                                     "action_scale": self.action_scale})
        return info


def robot_block(name: str, joints: Sequence[str], default_pose: Sequence[float], kp: Sequence[float],
                kd: Sequence[float], effort_limit: Sequence[float], velocity_limit: Sequence[float] | None,
                action_mode: str, action_scale: float, env_kwargs: dict[str, Any]) -> dict[str, Any]:
    """The metadata's `robot` entry: per joint in action order, and what one action means."""
    if action_mode == "position":
        action = {"kind": "position", "scale": [float(action_scale)] * len(joints),
                  "meaning": "joint target (rad) = default_pose + scale * action, clipped to the joint limits, "
                             "tracked by torque = kp * (target - q) - kd * dq, cut to effort_limit"}
    else:
        action = {"kind": "torque", "scale": [float(e) for e in effort_limit],
                  "meaning": "joint torque (N m) = scale * action, cut to effort_limit"}
    return {"name": name, "joints": list(joints), "default_pose": [float(v) for v in default_pose],
            "kp": [float(v) for v in kp], "kd": [float(v) for v in kd],
            "effort_limit": [float(v) for v in effort_limit],
            "velocity_limit": None if velocity_limit is None else [float(v) for v in velocity_limit],
            "action": action, "env_kwargs": env_kwargs}


def _mode(action_mode: str) -> str:
    if action_mode not in ACTION_MODES:
        raise ValueError(f"action_mode: expected one of {list(ACTION_MODES)}, got {action_mode!r}")
    return action_mode
