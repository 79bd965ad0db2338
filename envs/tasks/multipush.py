"""MultiPush: N planar mobile robots push a heavy box onto a goal, as a team.

The box rests on the floor with Coulomb friction mu * m * g = 0.4 * 4 kg * 9.81 = 15.7 N, while one
robot pushes with at most 10 N: alone it cannot move the box at all, two together move it at about
0.4 m/s. Robots are holonomic discs (two slide joints, force actuators) that touch only the box and
each other, so the model stays cheap (a few contacts, no rotation).

Everything is numpy over (simulations, robots); the PettingZoo env is a batch of one.
"""

from __future__ import annotations

import mujoco
import numpy as np

from envs.sim import BatchSim
from envs.tasks.base import StepResult

SUCCESS_DISTANCE = 0.2
ROBOT_FORCE = 10.0
ROBOT_RADIUS = 0.1
BOX_HALF = 0.25
PROGRESS_SCALE = 10.0
APPROACH_SCALE = 2.0
PUSH_OFFSET = BOX_HALF + ROBOT_RADIUS + 0.05
"""How far behind the box centre (seen from the goal) the shaping leads each robot."""
SUCCESS_BONUS = 5.0

_ROBOT = """
    <body name="robot_{i}" pos="0 0 0.1">
      <joint name="robot_{i}_x" type="slide" axis="1 0 0" damping="5"/>
      <joint name="robot_{i}_y" type="slide" axis="0 1 0" damping="5"/>
      <geom type="sphere" size="{r}" mass="1" contype="1" conaffinity="1" rgba="{rgba}"/>
    </body>"""

_MOTORS = """
    <motor joint="robot_{i}_x" gear="{f}" ctrlrange="-1 1"/>
    <motor joint="robot_{i}_y" gear="{f}" ctrlrange="-1 1"/>"""

_MODEL = """<mujoco model="multipush_{n}">
  <option timestep="0.01" integrator="implicitfast" gravity="0 0 -9.81"/>
  <visual><global offwidth="640" offheight="480"/></visual>
  <asset>
    <texture name="grid" type="2d" builtin="checker" rgb1="0.2 0.3 0.4" rgb2="0.3 0.4 0.5" width="256" height="256"/>
    <material name="grid" texture="grid" texrepeat="8 8" reflectance="0.1"/>
  </asset>
  <worldbody>
    <light pos="0 0 4" dir="0 0 -1" diffuse="0.8 0.8 0.8"/>
    <camera name="top" pos="0 0 5" xyaxes="1 0 0 0 1 0"/>
    <geom name="floor" type="plane" size="4 4 0.1" material="grid" contype="2" conaffinity="0" friction="0.4"/>
    <body name="goal" mocap="true" pos="0 0 0.005">
      <geom type="cylinder" size="{success} 0.005" contype="0" conaffinity="0" rgba="0.2 0.9 0.2 0.5"/>
    </body>
{robots}
    <body name="box" pos="0 0 {box_half}">
      <joint name="box_x" type="slide" axis="1 0 0"/>
      <joint name="box_y" type="slide" axis="0 1 0"/>
      <joint name="box_z" type="slide" axis="0 0 1"/>
      <geom type="box" size="{box_half} {box_half} {box_half}" mass="4" friction="0.4" contype="1" conaffinity="3"
            rgba="0.8 0.5 0.2 1"/>
    </body>
  </worldbody>
  <actuator>{motors}
  </actuator>
</mujoco>
"""

_COLORS = ("0.9 0.2 0.2 1", "0.2 0.4 0.9 1", "0.9 0.9 0.2 1", "0.7 0.2 0.9 1")


def multipush_xml(n_robots: int) -> str:
    """The MJCF of the task with `n_robots` robots (robot i owns qpos[2i:2i+2] and ctrl[2i:2i+2])."""
    robots = "".join(_ROBOT.format(i=i, r=ROBOT_RADIUS, rgba=_COLORS[i]) for i in range(n_robots))
    motors = "".join(_MOTORS.format(i=i, f=ROBOT_FORCE) for i in range(n_robots))
    return _MODEL.format(n=n_robots, success=SUCCESS_DISTANCE, box_half=BOX_HALF, robots=robots, motors=motors)


def multipush_model(n_robots: int) -> mujoco.MjModel:
    if not 2 <= n_robots <= 4:
        raise ValueError(f"MultiPush: n_robots must be 2, 3 or 4, got {n_robots}")
    return mujoco.MjModel.from_xml_string(multipush_xml(n_robots))


class MultiPushTask:
    """The cooperative push over a batch of simulations: per-robot observations, global state, team reward."""

    frame_skip = 5  # 100 Hz physics, 20 Hz policy
    max_episode_steps = 200

    def __init__(self, sim: BatchSim, n_robots: int) -> None:
        self.sim, self.n, self.m = sim, sim.nsim, n_robots
        self.act_dim = 2
        self.action_low = np.full(2, -1.0, dtype=np.float32)
        self.action_high = np.full(2, 1.0, dtype=np.float32)
        self.obs_dim = 10 + 2 * (n_robots - 1)
        self.state_dim = 4 * n_robots + 8
        self.goal = sim.bind("mocap_pos")[:, 0, :2]
        self._prev_box_dist = np.zeros(self.n)
        self._prev_reach = np.zeros(self.n)

    @property
    def obs_fields(self) -> list[tuple[str, int]]:
        """Names and sizes of one robot's observation parts, in order (recorded in its ONNX file)."""
        return [("own_pos", 2), ("own_vel", 2), ("box_rel", 2), ("goal_rel", 2), ("box_vel", 2),
                ("teammates_rel_nearest_first", 2 * (self.m - 1))]

    @property
    def control_dt(self) -> float:
        return float(self.sim.model.opt.timestep) * self.frame_skip

    # Views into the state: robots own the first 2 * m coordinates, then the box (x, y, z).
    def robot_pos(self) -> np.ndarray:
        return self.sim.qpos[:, : 2 * self.m].reshape(self.n, self.m, 2)

    def robot_vel(self) -> np.ndarray:
        return self.sim.qvel[:, : 2 * self.m].reshape(self.n, self.m, 2)

    def box_pos(self) -> np.ndarray:
        return self.sim.qpos[:, 2 * self.m: 2 * self.m + 2]

    def box_vel(self) -> np.ndarray:
        return self.sim.qvel[:, 2 * self.m: 2 * self.m + 2]

    def box_distance(self) -> np.ndarray:
        return np.linalg.norm(self.box_pos() - self.goal, axis=1)

    def push_spot(self) -> np.ndarray:
        """(n, 2) the point just behind the box on the side away from the goal, where pushing helps."""
        away = self.box_pos() - self.goal
        away /= np.maximum(np.linalg.norm(away, axis=1, keepdims=True), 1e-6)
        return self.box_pos() + PUSH_OFFSET * away

    def reach_distance(self) -> np.ndarray:
        """Mean distance of the robots to the push spot: shaping that brings them behind the box."""
        return np.linalg.norm(self.robot_pos() - self.push_spot()[:, None], axis=2).mean(axis=1)

    def reset_ids(self, ids: np.ndarray, rngs: list[np.random.Generator]) -> None:
        m = self.m
        for i in ids:
            rng = rngs[i]
            box = rng.uniform(-0.5, 0.5, size=2)
            heading = rng.uniform(-np.pi, np.pi)
            self.goal[i] = box + rng.uniform(0.8, 1.5) * np.array([np.cos(heading), np.sin(heading)])
            # Robots on a ring around the box, evenly spaced with jitter, so they never start overlapping.
            angles = rng.uniform(-np.pi, np.pi) + 2 * np.pi * np.arange(m) / m + rng.uniform(-0.3, 0.3, size=m)
            radii = rng.uniform(0.55, 1.0, size=m)
            robots = box + radii[:, None] * np.stack([np.cos(angles), np.sin(angles)], axis=1)
            self.sim.qpos[i, : 2 * m] = robots.reshape(-1)
            self.sim.qpos[i, 2 * m: 2 * m + 2] = box
            self.sim.qpos[i, 2 * m + 2] = 0.0
            self.sim.qvel[i] = 0.0
        self._prev_box_dist[ids] = self.box_distance()[ids]
        self._prev_reach[ids] = self.reach_distance()[ids]

    def apply_action(self, action: np.ndarray) -> None:
        """(n, m, 2) forces in [-1, 1] units of ROBOT_FORCE, world frame."""
        self.sim.ctrl[:] = np.clip(action, -1.0, 1.0).reshape(self.n, 2 * self.m)

    def observe(self) -> np.ndarray:
        """(n, m, obs_dim): own position and velocity, box and goal relative to self, box velocity,
        then the teammates' positions relative to self, nearest first."""
        pos, vel = self.robot_pos(), self.robot_vel()
        box, goal = self.box_pos()[:, None], self.goal[:, None]
        box_vel = np.broadcast_to(self.box_vel()[:, None], pos.shape)
        rel = pos[:, None, :, :] - pos[:, :, None, :]  # rel[e, i, j] = robot j relative to robot i
        dist = np.linalg.norm(rel, axis=3)
        dist[:, np.arange(self.m), np.arange(self.m)] = np.inf
        order = np.argsort(dist, axis=2)[:, :, : self.m - 1]
        mates = np.take_along_axis(rel, order[..., None], axis=2).reshape(self.n, self.m, -1)
        return np.concatenate([pos, vel, box - pos, goal - pos, box_vel, mates], axis=2).astype(np.float32)

    def state(self) -> np.ndarray:
        """(n, state_dim) global state for a centralized critic."""
        box = self.box_pos()
        return np.concatenate([self.robot_pos().reshape(self.n, -1), self.robot_vel().reshape(self.n, -1),
                               box, self.box_vel(), self.goal, self.goal - box], axis=1).astype(np.float32)

    def evaluate(self, action: np.ndarray) -> StepResult:
        """Team reward: box progress toward the goal, robots' progress toward the push spot, a bonus at the goal."""
        dist, reach = self.box_distance(), self.reach_distance()
        success = dist < SUCCESS_DISTANCE
        reward = (PROGRESS_SCALE * (self._prev_box_dist - dist) + APPROACH_SCALE * (self._prev_reach - reach)
                  + SUCCESS_BONUS * success)
        # Copies: resets overwrite these in place, and `dist` leaves in the step's info.
        self._prev_box_dist, self._prev_reach = dist.copy(), reach.copy()
        return StepResult(reward=reward, terminated=success.copy(), success=success,
                          extras={"box_distance": dist})
