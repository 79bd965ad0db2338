"""Quadruped-v0: Locomotion-v0 on the `quadruped` robot (envs/robots/quadruped) with its own recipe.

The 12-joint robot tracks a commanded planar velocity (vx, vy, yaw rate) drawn once per episode. Actions
are joint position offsets from the standing pose (`action_mode: pd`), tracked by the robot's MuJoCo
position servos at the physics rate (200 Hz) while the policy runs at 50 Hz, or joint torques
(`action_mode: torque`). The reward, per policy step: velocity tracking, an upright torso, low mechanical
power, smooth actions and a bonus for staying alive. An episode ends on a fall: the torso below
FALL_HEIGHT or tilted past 60 degrees. Every episode starts facing +x in the standing pose.

This module holds only that configuration (the options, the weights under Quadruped-v0's names, the
observation names and the metadata it always had); the task is LocomotionTask.
"""

from __future__ import annotations

from typing import Any

import mujoco

from envs.sim import BatchSim
from envs.tasks.locomotion import OBS_UNITS, LocomotionTask, Range
from envs.tasks.locomotion import WEIGHTS as RECIPE

ROBOT = "quadruped"
FALL_HEIGHT = 0.12
"""m: the torso below this height has fallen."""
FALL_UPRIGHT = 0.5
"""The torso's z axis' world-z component below which the robot has fallen (tilted past 60 degrees)."""
WEIGHTS = {"linear": 1.0, "yaw": 0.5, "upright": 0.5, "energy": 2e-4, "smooth": 0.02, "alive": 0.2}
"""Quadruped-v0's `weights` and their defaults; energy and smooth are costs (subtracted)."""
TERMS = {"linear": ("tracking_lin_vel", 1.0), "yaw": ("tracking_ang_vel", 1.0), "upright": ("upright", 1.0),
         "energy": ("power", -1.0), "smooth": ("action_rate", -1.0), "alive": ("alive", 1.0)}
"""Each Quadruped-v0 weight as a Locomotion reward term and the sign its weight takes there."""
MODES = {"pd": "position", "torque": "torque"}
"""Quadruped-v0's action modes as Locomotion's."""


def _mode(action_mode: str) -> str:
    if action_mode not in MODES:
        raise ValueError(f"Quadruped action_mode: expected 'pd' or 'torque', got {action_mode!r}")
    return MODES[action_mode]


class QuadrupedTask(LocomotionTask):
    default_robot = ROBOT
    label = "Quadruped"
    base_fields = ("gravity_in_body", "linear_velocity_body", "angular_velocity_body")
    obs_units = {"gravity_in_body": ("unit vector, torso frame", 1.0),
                 "linear_velocity_body": ("m/s, torso frame", 1.0),
                 "angular_velocity_body": ("rad/s, torso frame", 1.0),
                 **{k: OBS_UNITS[k] for k in ("command", "joint_offset", "joint_velocity", "last_action")}}

    def __init__(self, sim: BatchSim, action_mode: str = "pd", action_scale: float = 0.5,
                 command_vx: Range = (-0.5, 1.0), command_vy: Range = (-0.3, 0.3),
                 command_yaw: Range = (-0.5, 0.5), tracking_sigma: float = 0.25,
                 weights: dict[str, float] | None = None) -> None:
        unknown = sorted(set(weights or {}) - set(WEIGHTS))
        if unknown:
            raise ValueError(f"Quadruped weights.{unknown[0]}: unknown reward term (terms: {', '.join(WEIGHTS)})")
        weights = {**WEIGHTS, **(weights or {})}
        super().__init__(
            sim, robot=ROBOT, action_mode=_mode(action_mode), action_scale=action_scale, command_vx=command_vx,
            command_vy=command_vy, command_yaw=command_yaw, stand_still=None, command_period=None,
            settle_time=0.0, tracking_sigma=tracking_sigma, only_positive_rewards=False,
            weights=dict.fromkeys(RECIPE, 0.0) | {term: sign * weights[name] for name, (term, sign) in TERMS.items()},
            push_interval=None, init_noise_joints=None, spawn_yaw=None, reward_dt=False, fall_height=FALL_HEIGHT,
            fall_on_base_contact=False)
        self.quadruped_mode = action_mode
        self.min_upright = FALL_UPRIGHT  # the stated figure, not cos(max_tilt) (one ulp away from it)

    @classmethod
    def build_model(cls, robot: str | None = None, action_mode: str = "pd", **_: Any) -> mujoco.MjModel:
        return super().build_model(ROBOT, action_mode=_mode(action_mode))

    def describe(self) -> dict[str, Any]:
        """Locomotion's description; Quadruped-v0's kwargs rebuild the env (deploy's sim backend), and in
        torque mode no PD acts, so the metadata's gains are zero as they always were."""
        info = super().describe()
        robot = info["robot"]
        robot["env_kwargs"] = {"action_mode": self.quadruped_mode, "action_scale": self.action_scale}
        if self.action_mode == "torque":
            robot["kp"], robot["kd"] = [0.0] * len(robot["joints"]), [0.0] * len(robot["joints"])
        return info
