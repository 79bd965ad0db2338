"""Locomotion: any described legged robot tracks a commanded planar velocity (vx, vy, yaw rate).

Commands are redrawn every `command_period` seconds from `command_vx`, `command_vy`, `command_yaw`
(a tenth of the draws, `stand_still`, is a zero command). The reward is legged_gym's recipe, each
term times its weight in `weights` times the control period: velocity tracking (exp kernels), vertical
velocity, roll/pitch rates, orientation, torques, power, joint accelerations, action rate, feet air
time and standing still; with `only_positive_rewards` the sum is clipped at zero as legged_gym does.
An episode ends when the base touches anything (touch sensors around its geoms) or tilts past
`max_tilt`.

`gait` (off by default) adds the periodic gait prior of walk-these-ways and periodic reward composition:
a clock with `period` seconds per cycle whose phase (sin, cos) joins the observation as `gait_clock`,
and a `gait_contact` reward term: per foot +1 when its contact matches the schedule (foot `i` swings
while (phase + offsets[i]) mod 1 < swing, stands otherwise), -1 when not, averaged over the feet. A
trot on four feet in description order FR, FL, RR, RL is `{period: 0.5, offsets: [0, 0.5, 0.5, 0]}`.
Standing still scores 0 on it and a trot 1, so stepping pays before the robot tracks a velocity: with the
recipe alone go12 stood still through 3M PPO steps, with the trot it walked within 0.4M
(envs/robots/go12/README.md, "Learning to walk").

`tracking_direction` (weight 0 by default) is the planar base velocity projected on the commanded direction,
over the commanded speed, cut to [-1, 1] (0 for commands slower than 0.1 m/s). legged_gym's exp kernel
exp(-error^2 / sigma) is flat far from the command: under a -1 m/s command standing scores exp(-4) = 0.018
and stepping back at 0.2 m/s 0.077, so with the trot prior's gait_contact worth about 0.8 a step the
policy learned forward walking (where it first moved) but stood under backward and sideways commands. This
term pays each m/s toward the command alike, from standing to the commanded speed, and nothing beyond it.
Measured on go12 (weight 1.0, seed 0, 0.6M steps) it did not help: the policy still stood under backward
commands and walked forward under sideways ones (envs/robots/go12/README.md); `foot_placement` did.

`foot_placement` (weight 0 by default, a penalty: give it a negative weight; needs a `gait`) is the Raibert
heuristic of walk-these-ways written for our schedule: a foot at the commanded base velocity (plus the yaw
rate times its lever arm) moves, relative to the base, from half a stride behind its standing position
to half a stride ahead during its swing and back during its stance, a stride being that velocity times the
stance time (`foot_targets`). The term is the sum over the feet of the squared planar distance (m^2, base
frame) between each foot and that target. Tracking rewards velocity a gait produces over many steps; this
term says at every step where each foot should be for the commanded direction, forward, backward, sideways
or turning alike: with it (weight -10, seed 0) go12 walked backward and sideways by 1.0M PPO steps; without
it (seed 1) the policy still stood under those commands at 1.6M. The feet's positions are MuJoCo's kinematics of the
control period's last physics step (one physics step, 5 ms on go12, behind the state the policy observes).

`velocity_error` in the infos is the norm of (commanded - measured) planar base velocity in the base
frame; its Gymnasium mask `_velocity_error` is false during the first `settle_time` seconds of each
command, and evaluation averages it over the other steps, as issue 20 defines the figure.

Terrain (`terrain`, envs.robots.terrain) and pushes (`push_velocity`: a random planar base velocity of
up to that many m/s added every `push_interval` seconds) are off by default and seeded.

Options for tasks that are not legged_gym's, all off by default (Quadruped-v0, envs/tasks/quadruped.py, is
this task with them): the `upright` (cos of the base's tilt) and `alive` (1 per step) reward terms;
`reward_dt: false`, the weighted sum per policy step rather than per second; `fall_height`, an episode also
ends when the base is lower than that above its spawn point's ground, and `fall_on_base_contact: false`, a
base touching the ground does not end it. `None` turns off a random draw without drawing: `command_period`
(one command per episode), `stand_still`, `init_noise_joints` (the exact default pose), `push_interval` (no
push timer) and `spawn_yaw` (facing +x; else a heading in [-spawn_yaw, spawn_yaw]). A zero still draws, as
it always did, so seeded runs of earlier versions stay as they were.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import mujoco
import numpy as np

from envs.robots.build import RobotModel, build_model
from envs.robots.description import RobotDescription
from envs.robots.terrain import Terrain, TerrainMap
from envs.sim import BatchSim
from envs.tasks.base import StepResult
from envs.tasks.robot_task import RobotTask

WEIGHTS = {"tracking_lin_vel": 1.0, "tracking_ang_vel": 0.5, "upright": 0.0, "lin_vel_z": -2.0, "ang_vel_xy": -0.05,
           "orientation": -1.0, "torques": -1e-5, "power": 0.0, "dof_acc": -2.5e-7, "action_rate": -0.01,
           "feet_air_time": 1.0, "stand_still": 0.0, "gait_contact": 0.0, "tracking_direction": 0.0,
           "foot_placement": 0.0, "alive": 0.0}
"""legged_gym's reward scales (LeggedRobotCfg.rewards.scales, with an orientation penalty); each is
multiplied by the control period; `gait_contact`, `foot_placement` (0 unless a `gait` is given) and
`tracking_direction` (off by default) are ours, `upright` and `alive` (off) Quadruped-v0's. The order is
the order of the sum (Quadruped-v0's rewards stay bit for bit what they were)."""
DIRECTION_MIN_SPEED = 0.1
"""m/s: `tracking_direction` scores only commands at least this fast (a stand-still command has no direction)."""
CONTACT_FORCE = 1.0
"""N: a touch sensor reading above this is a contact."""

OBS_UNITS = {"gravity_in_base": ("unit vector, base frame", 1.0), "base_linear_velocity": ("m/s, base frame", 1.0),
             "base_angular_velocity": ("rad/s, base frame", 1.0), "command": ("vx m/s, vy m/s, yaw rad/s", 1.0),
             "joint_offset": ("rad, joint position - default_pose, action order", 1.0),
             "joint_velocity": ("rad/s, action order", 0.05), "last_action": ("action units, [-1, 1]", 1.0),
             "gait_clock": ("sin, cos of 2 pi x gait phase; the phase advances control_dt / gait period "
                            "per step from a random start", 1.0)}
"""Each observation field's units and the scale it is multiplied by before the policy sees it."""

Range = tuple[float, float] | float
"""[low, high] to draw a command from, or one number: that command every time."""


def _number(x: object) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def command_range(name: str, value: Range) -> tuple[float, float]:
    """(low, high) of the command option `name` (its full name in errors); a number v is (v, v)."""
    if _number(value):
        return float(value), float(value)
    if isinstance(value, list | tuple) and len(value) == 2 and all(map(_number, value)) and value[0] <= value[1]:
        return float(value[0]), float(value[1])
    raise ValueError(f"{name}: expected [low, high] with low <= high, or a number; got {value!r}")


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """np.cross of (n, 3) rows written out: the products and differences np.cross computes (so the same
    bits), without its axis handling, which costs more than the arithmetic at these sizes."""
    a0, a1, a2 = a[:, 0], a[:, 1], a[:, 2]
    b0, b1, b2 = b[:, 0], b[:, 1], b[:, 2]
    return np.stack([a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0], axis=1)


def rotate_to_body(quat: np.ndarray, v: np.ndarray) -> np.ndarray:
    """World vectors (n, 3) in the frames of w-x-y-z quaternions (n, 4): R(q)^T v."""
    w, u = quat[:, :1], -quat[:, 1:]
    t = 2.0 * _cross(u, v)
    return v + w * t + _cross(u, t)


@dataclass(frozen=True)
class Gait:
    """A periodic contact schedule: `period` s per cycle; foot i swings while (phase + offsets[i]) mod 1 <
    `swing` and stands otherwise."""

    period: float
    offsets: tuple[float, ...]
    swing: float = 0.5

    @classmethod
    def from_kwargs(cls, value: dict[str, Any] | None, feet: int) -> Gait | None:
        """The `gait` env kwarg checked against the robot's feet; None when off."""
        if value is None:
            return None
        if not isinstance(value, dict) or set(value) - {"period", "offsets", "swing"} or "period" not in value \
                or "offsets" not in value:
            raise ValueError(f"Locomotion gait: expected {{period: s, offsets: [one phase per foot], swing: "
                             f"fraction}}, got {value!r}")
        period, swing = float(value["period"]), float(value.get("swing", 0.5))
        offsets = tuple(float(v) for v in value["offsets"])
        if period <= 0 or not 0 < swing < 1:
            raise ValueError(f"Locomotion gait: expected period > 0 and 0 < swing < 1, got {period!r}, {swing!r}")
        if len(offsets) != feet or not all(0 <= v < 1 for v in offsets):
            raise ValueError(f"Locomotion gait.offsets: expected {feet} phases in [0, 1) (one per foot), "
                             f"got {list(offsets)}")
        return cls(period, offsets, swing)

    def swinging(self, phase: np.ndarray) -> np.ndarray:
        """(n, feet) whether each foot should be in the air at `phase` (n,)."""
        return np.mod(phase[:, None] + np.asarray(self.offsets), 1.0) < self.swing


def direction_progress(command: np.ndarray, velocity: np.ndarray) -> np.ndarray:
    """(n,) planar `velocity` (n, 2) along the unit direction of `command` (n, 2), over the command's speed,
    cut to [-1, 1]; 0 where the command is slower than DIRECTION_MIN_SPEED. Linear, so unlike the exp
    kernel it pays the first steps toward a far command as much as the last ones."""
    speed = np.linalg.norm(command, axis=1)
    moving = speed >= DIRECTION_MIN_SPEED
    along = np.sum(command * velocity, axis=1) / np.where(moving, speed * speed, 1.0)
    return np.where(moving, np.clip(along, -1.0, 1.0), 0.0)


def foot_targets(command: np.ndarray, stance: np.ndarray, foot_phase: np.ndarray, swing: float,
                 period: float) -> np.ndarray:
    """(n, feet, 2) planar foot positions in the base frame for commands (n, 3) (vx, vy, yaw rate): each
    foot's standing position `stance` (feet, 2) plus its velocity under the command, v = (vx - yaw y, vy +
    yaw x), times the stance time (1 - swing) x period, times a triangle wave of the foot's phase (n, feet)
    in [0, 1): from -1/2 to +1/2 over the swing (phase < swing), back to -1/2 over the stance."""
    x, y = stance[:, 0], stance[:, 1]
    velocity = np.stack([command[:, :1] - command[:, 2:3] * y, command[:, 1:2] + command[:, 2:3] * x], axis=-1)
    wave = np.where(foot_phase < swing, foot_phase / swing - 0.5, 0.5 - (foot_phase - swing) / (1.0 - swing))
    return stance + velocity * ((1.0 - swing) * period * wave)[..., None]


def _quat_z(angle: np.ndarray) -> np.ndarray:
    return np.stack([np.cos(angle / 2), np.zeros_like(angle), np.zeros_like(angle), np.sin(angle / 2)], axis=-1)


class LocomotionTask(RobotTask):
    robot_kind = "legged"
    default_robot = "go12"
    max_episode_steps = 1000  # 20 s at 50 Hz
    uses_derived_state = False  # state, touch sensors, the terrain map; foot positions as mj_step left them
    label = "Locomotion"
    """The task's name in its errors."""
    base_fields = ("gravity_in_base", "base_linear_velocity", "base_angular_velocity")
    """The names of the first three observation fields (gravity, linear and angular velocity, base frame)."""
    obs_units = OBS_UNITS

    def __init__(self, sim: BatchSim, robot: str | None = None, action_mode: str = "position",
                 action_scale: float = 0.5, command_vx: Range = (-1.0, 1.5), command_vy: Range = (-0.5, 0.5),
                 command_yaw: Range = (-1.0, 1.0), stand_still: float | None = 0.1,
                 command_period: float | None = 5.0, settle_time: float = 1.0, tracking_sigma: float = 0.25,
                 air_time_target: float = 0.5, max_tilt: float = 1.0, only_positive_rewards: bool = True,
                 weights: dict[str, float] | None = None, terrain: dict[str, Any] | None = None,
                 push_velocity: float = 0.0, push_interval: tuple[float, float] | None = (5.0, 10.0),
                 init_noise_joints: float | None = 0.1, gait: dict[str, Any] | None = None,
                 spawn_yaw: float | None = math.pi, reward_dt: bool = True, fall_height: float | None = None,
                 fall_on_base_contact: bool = True) -> None:
        super().__init__(sim, robot, action_mode, action_scale)
        legged = self.robot.legged
        assert legged is not None
        model = sim.model
        nj = len(self.robot.joints)
        nf_ = len(legged.feet)
        self.gait = Gait.from_kwargs(gait, nf_)
        gravity, linear, angular = self.base_fields
        self.obs_fields = ((gravity, 3), (linear, 3), (angular, 3), ("command", 3), ("joint_offset", nj),
                           ("joint_velocity", nj), ("last_action", nj)) + ((("gait_clock", 2),) if self.gait else ())
        label = self.label
        self.ranges = np.array([command_range(f"{label} {name}", value) for name, value in
                                (("command_vx", command_vx), ("command_vy", command_vy),
                                 ("command_yaw", command_yaw))], dtype=np.float64)
        if stand_still is not None and not 0.0 <= stand_still <= 1.0:
            raise ValueError(f"{label} stand_still: expected a fraction in [0, 1], got {stand_still!r}")
        unknown = sorted(set(weights or {}) - set(WEIGHTS))
        if unknown:
            raise ValueError(f"{label} weights.{unknown[0]}: unknown reward term (terms: {', '.join(WEIGHTS)})")
        self.weights = {**WEIGHTS, **(weights or {})}
        for term in ("gait_contact", "foot_placement"):
            if self.weights[term] and self.gait is None:
                raise ValueError(f"{label} weights.{term}: needs a `gait` (the schedule it rewards)")
        self.stand_still = stand_still
        self.spawn_yaw = spawn_yaw
        self.reward_dt = reward_dt
        self.fall_height = fall_height
        self.fall_on_base_contact = fall_on_base_contact
        self.tracking_sigma = tracking_sigma
        self.air_time_target = air_time_target
        self.min_upright = float(np.cos(max_tilt))
        self.only_positive = only_positive_rewards
        self.init_noise_joints = init_noise_joints
        self._command_period, self._settle_time = command_period, settle_time
        base = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, legged.base)
        joint = model.body_jntadr[base]
        self.base_qpos = int(model.jnt_qposadr[joint])
        self.base_qvel = int(model.jnt_dofadr[joint])
        self.sensordata = sim.bind("sensordata")
        sensors = self._sensor_indices(model)
        self.foot_sensors, self.base_sensors = sensors.foot_sensors, sensors.base_sensors
        self.foot_geoms = np.array([mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_GEOM, f) for f in legged.feet])
        self.base_body = base
        self.stance = self._stance_positions(model) if self.weights["foot_placement"] else np.zeros((nf_, 2))
        self.terrain = TerrainMap(Terrain.from_kwargs(terrain), self.n)
        self.push_velocity = float(push_velocity)
        if self.push_velocity < 0 or (push_interval is None and self.push_velocity > 0) or not (
                push_interval is None or 0 < push_interval[0] <= push_interval[1]):
            raise ValueError(f"{label} push_velocity/push_interval: expected >= 0 and 0 < low <= high (pushes "
                             f"need an interval), got {push_velocity!r}, {push_interval!r}")
        self._push_interval = push_interval
        self._count_in_steps()
        n, nf = self.n, len(legged.feet)
        self.command = np.zeros((n, 3))
        self.command_age = np.zeros(n, dtype=np.int64)
        self.next_push = np.zeros(n, dtype=np.int64)
        self.air_time = np.zeros((n, nf))
        self.last_contact = np.zeros((n, nf), dtype=bool)
        self.last_joint_velocity = np.zeros((n, nj))
        self.spawn_xy = np.zeros((n, 2))
        self.spawn_ground = np.zeros(n)
        self.down = np.tile([0.0, 0.0, -1.0], (n, 1))
        """World gravity's direction per simulation (rotated into the base frame each step)."""
        self.walked = np.zeros(n)
        self.fell = np.zeros(n, dtype=bool)
        self.phase = np.zeros(n)
        self.terms: dict[str, np.ndarray] = {}
        """The last step's unweighted reward terms, (n,) each: what each weight multiplies."""
        self.rngs: list[np.random.Generator] = []

    @classmethod
    def build_robot_model(cls, robot: RobotDescription, terrain: dict[str, Any] | None = None,
                          **task_kwargs: Any) -> RobotModel:
        spec_terrain = Terrain.from_kwargs(terrain)
        return build_model(robot, edit=None if spec_terrain is None else spec_terrain.add_to)

    def _stance_positions(self, model: mujoco.MjModel) -> np.ndarray:
        """(feet, 2): each foot's planar position in the base frame in the default pose (level base)."""
        data = mujoco.MjData(model)
        b = self.base_qpos
        data.qpos[b + 3:b + 7] = (1.0, 0.0, 0.0, 0.0)
        data.qpos[self.drive.qpos_index] = self.drive.default_pose
        mujoco.mj_kinematics(model, data)
        return (data.geom_xpos[self.foot_geoms, :2] - data.xpos[self.base_body, :2]).copy()

    def foot_positions(self) -> np.ndarray:
        """(n, feet, 2): the feet's planar positions in the base frame."""
        geom_xpos, xpos, xquat = self.sim.bind("geom_xpos"), self.sim.bind("xpos"), self.sim.bind("xquat")
        quat = np.repeat(xquat[:, self.base_body], len(self.foot_geoms), axis=0)
        relative = (geom_xpos[:, self.foot_geoms] - xpos[:, self.base_body, None]).reshape(-1, 3)
        return rotate_to_body(quat, relative)[:, :2].reshape(self.n, -1, 2)

    def _sensor_indices(self, model: mujoco.MjModel) -> RobotModel:
        def by_prefix(prefix: str) -> np.ndarray:
            return np.array([model.sensor_adr[s] for s in range(model.nsensor) if
                             (mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_SENSOR, s) or "").startswith(prefix)],
                            dtype=np.int64)

        return RobotModel(model=model, foot_sensors=by_prefix("touch_foot"), base_sensors=by_prefix("touch_base"))

    def describe(self) -> dict[str, Any]:
        """The robot task's description; a policy that reads the gait clock needs the same clock where it
        runs, so the gait joins the kwargs that rebuild the robot (deploy's sim backend) and the metadata."""
        info = super().describe()
        if self.gait is not None:
            info["robot"]["env_kwargs"]["gait"] = {"period": self.gait.period, "offsets": list(self.gait.offsets),
                                                   "swing": self.gait.swing}
        return info

    # --- episodes and commands ---------------------------------------------------------------------------

    def carried_state(self) -> dict[str, np.ndarray]:
        """The curriculum's level of each simulation: without it a resumed run would send every robot
        back to the first band."""
        t = self.terrain.terrain
        return {"terrain_level": self.terrain.level.copy()} if t is not None and t.curriculum else {}

    def _restore(self, state: dict[str, np.ndarray]) -> None:
        if "terrain_level" in state:
            self.terrain.level[:] = np.asarray(state["terrain_level"], dtype=np.int64)

    def reset_ids(self, ids: np.ndarray, rngs: list[np.random.Generator]) -> None:
        self.rngs = rngs
        legged = self.robot.legged
        assert legged is not None
        b, v = self.base_qpos, self.base_qvel
        nj = len(self.robot.joints)
        self.terrain.update_levels(ids, self.walked, self.fell, rngs)
        for i in ids:
            rng = rngs[i]
            x, y, ground = self.terrain.spawn(i, rng)
            self.spawn_xy[i] = (x, y)
            self.spawn_ground[i] = ground
            yaw = 0.0 if self.spawn_yaw is None else rng.uniform(-self.spawn_yaw, self.spawn_yaw)
            self.sim.qpos[i, b:b + 3] = (x, y, ground + legged.base_height)
            self.sim.qpos[i, b + 3:b + 7] = _quat_z(np.asarray(yaw))
            noise = self.init_noise_joints
            self.sim.qpos[i, self.drive.qpos_index] = self.drive.default_pose if noise is None else \
                self.drive.default_pose + rng.uniform(-noise, noise, size=nj)
            self.sim.qvel[i, v:v + 6] = 0.0
            self.command[i] = self._draw_command(rng)
            if self.push_steps is not None:
                self.next_push[i] = rng.integers(self.push_steps[0], self.push_steps[1] + 1)
            if self.gait is not None:
                self.phase[i] = rng.uniform()
        self.command_age[ids] = 0
        self.walked[ids] = 0.0
        self.fell[ids] = False
        self.air_time[ids] = 0.0
        self.last_contact[ids] = False
        self.last_joint_velocity[ids] = 0.0
        self.reset_actions(ids)

    def _draw_command(self, rng: np.random.Generator) -> np.ndarray:
        command = rng.uniform(self.ranges[:, 0], self.ranges[:, 1])
        return np.zeros(3) if self.stand_still is not None and rng.uniform() < self.stand_still else command

    def apply_action(self, action: np.ndarray) -> None:
        super().apply_action(action)
        if self.push_velocity > 0 and self.push_steps is not None:
            self.next_push -= 1
            for i in np.flatnonzero(self.next_push <= 0):
                rng = self.rngs[i]
                angle, speed = rng.uniform(-np.pi, np.pi), rng.uniform(0.0, self.push_velocity)
                self.sim.qvel[i, self.base_qvel:self.base_qvel + 2] += speed * np.array([np.cos(angle), np.sin(angle)])
                self.next_push[i] = rng.integers(self.push_steps[0], self.push_steps[1] + 1)

    # --- observations and rewards --------------------------------------------------------------------------

    def base_state(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Gravity direction, linear and angular velocity, all in the base frame, (n, 3) each."""
        b, v = self.base_qpos, self.base_qvel
        quat = self.sim.qpos[:, b + 3:b + 7]
        gravity = rotate_to_body(quat, self.down)
        linear = rotate_to_body(quat, self.sim.qvel[:, v:v + 3])  # free joint: world-frame linear velocity
        angular = self.sim.qvel[:, v + 3:v + 6]  # free joint: base-frame angular velocity
        return gravity, linear, angular

    def observe(self) -> np.ndarray:
        gravity, linear, angular = self.base_state()
        q, qd = self.joint_state()
        scale = self.obs_units["joint_velocity"][1]
        parts = [gravity, linear, angular, self.command, q - self.drive.default_pose, scale * qd, self.last_action]
        if self.gait is not None:
            angle = 2 * np.pi * self.phase
            parts.append(np.stack([np.sin(angle), np.cos(angle)], axis=1))
        return np.concatenate(parts, axis=1).astype(np.float32)

    def evaluate(self, action: np.ndarray) -> StepResult:
        w, dt = self.weights, self.control_dt
        gravity, linear, angular = self.base_state()
        _, qd = self.joint_state()
        lin_err = np.sum(np.square(self.command[:, :2] - linear[:, :2]), axis=1)
        yaw_err = np.square(self.command[:, 2] - angular[:, 2])
        contact = self.sensordata[:, self.foot_sensors] > CONTACT_FORCE
        first_contact = (self.air_time > 0) & (contact | self.last_contact)
        self.air_time += dt
        moving = np.linalg.norm(self.command[:, :2], axis=1) > 0.1
        air = np.sum((self.air_time - self.air_time_target) * first_contact, axis=1) * moving
        self.air_time[contact | self.last_contact] = 0.0
        self.last_contact = contact
        offset = self.sim.qpos[:, self.drive.qpos_index] - self.drive.default_pose
        power = np.sum(np.abs(self.torque * qd), axis=1)
        terms = {
            "tracking_lin_vel": np.exp(-lin_err / self.tracking_sigma),
            "tracking_ang_vel": np.exp(-yaw_err / self.tracking_sigma),
            "upright": -gravity[:, 2],
            "lin_vel_z": np.square(linear[:, 2]),
            "ang_vel_xy": np.sum(np.square(angular[:, :2]), axis=1),
            "orientation": np.sum(np.square(gravity[:, :2]), axis=1),
            "torques": np.sum(np.square(self.torque), axis=1),
            "power": power,
            "dof_acc": np.sum(np.square((qd - self.last_joint_velocity) / dt), axis=1),
            "action_rate": np.sum(np.square(self.last_action - self.prev_action), axis=1),
            "feet_air_time": air,
            "stand_still": np.sum(np.abs(offset), axis=1) * ~moving,
            "tracking_direction": direction_progress(self.command[:, :2], linear[:, :2]),
            "alive": np.ones(self.n),
        }
        if self.gait is not None:
            # The contacts after this step against the schedule at the phase they belong to.
            self.phase = np.mod(self.phase + dt / self.gait.period, 1.0)
            match = contact != self.gait.swinging(self.phase)
            terms["gait_contact"] = np.mean(np.where(match, 1.0, -1.0), axis=1)
            if w["foot_placement"]:
                foot_phase = np.mod(self.phase[:, None] + np.asarray(self.gait.offsets), 1.0)
                target = foot_targets(self.command, self.stance, foot_phase, self.gait.swing, self.gait.period)
                terms["foot_placement"] = np.sum(np.square(self.foot_positions() - target), axis=(1, 2))
        self.terms = terms
        reward = sum(w[k] * terms[k] for k in WEIGHTS if w[k])
        if self.reward_dt:
            reward = reward * dt
        if self.only_positive:
            reward = np.maximum(reward, 0.0)
        self.last_joint_velocity = qd.copy()
        base_contact = (self.sensordata[:, self.base_sensors] > CONTACT_FORCE).any(axis=1) \
            if len(self.base_sensors) and self.fall_on_base_contact else np.zeros(self.n, dtype=bool)
        fell = base_contact | (-gravity[:, 2] < self.min_upright)
        b = self.base_qpos
        if self.fall_height is not None:
            fell |= self.sim.qpos[:, b + 2] - self.spawn_ground < self.fall_height
        self.walked = np.linalg.norm(self.sim.qpos[:, b:b + 2] - self.spawn_xy, axis=1)
        self.fell = fell.copy()
        error = np.linalg.norm(self.command[:, :2] - linear[:, :2], axis=1)
        settled = self.command_age >= self.settle_steps
        self._advance_commands()
        return StepResult(reward=np.asarray(reward, dtype=np.float64), terminated=fell, extras={
            "velocity_error": error, "_velocity_error": settled, "forward_velocity": linear[:, 0].copy(),
            "power": power})

    def _count_in_steps(self) -> None:
        """The command period, settle time and push interval (seconds) in policy steps at this control rate."""
        dt = self.control_dt
        period, push = self._command_period, self._push_interval
        self.command_steps = None if period is None else max(1, round(period / dt))
        self.settle_steps = round(self._settle_time / dt)
        self.push_steps = None if push is None else (max(1, round(push[0] / dt)), max(1, round(push[1] / dt)))

    def set_frame_skip(self, frame_skip: int) -> None:
        super().set_frame_skip(frame_skip)
        self._count_in_steps()

    def _advance_commands(self) -> None:
        """Count each command's age; a command `command_period` old is redrawn."""
        self.command_age += 1
        if self.command_steps is None:
            return
        for i in np.flatnonzero(self.command_age >= self.command_steps):
            self.command[i] = self._draw_command(self.rngs[i])
            self.command_age[i] = 0
