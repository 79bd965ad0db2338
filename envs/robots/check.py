"""`robotrl robot check`: does a description fit its MJCF, the robot's published mass, and the floor?

Loading a description already checks names, the default pose against the joint limits and the effort
limits against the actuators. This adds what needs the physics: the total mass against the stated
figure, and holding the default pose under the description's PD for two seconds (a legged robot
placed on the floor at its base height must still stand; an arm must still be in its pose), with the
same torque-speed limits the tasks apply.
"""

from __future__ import annotations

from typing import Any

import mujoco
import numpy as np

from envs.robots.build import build_model
from envs.robots.description import RobotDescription, RobotError
from envs.robots.drive import JointDrive

MASS_TOLERANCE = 0.10
"""Largest relative difference between the model's total mass and the description's `mass`."""
HOLD_SECONDS = 2.0
STAND_HEIGHT = 0.7
"""A standing base stays above this fraction of `base_height`..."""
STAND_UPRIGHT = 0.9
"""...with its z axis' world-z component above this (tilted less than about 25 degrees)."""
ARM_HOLD = 0.05
"""rad: the largest joint drift an arm may show while holding its pose."""


def total_mass(robot: RobotDescription) -> float:
    """Mass of every body of the robot's own MJCF, kg."""
    return float(robot.model().body_mass[1:].sum())


def place_default(robot: RobotDescription, model: mujoco.MjModel, qpos: np.ndarray, drive: JointDrive) -> None:
    """Write the default pose into a qpos row (a legged base at base_height, upright, at the origin)."""
    if robot.legged is not None:
        base = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, robot.legged.base)
        adr = model.jnt_qposadr[model.body_jntadr[base]]
        qpos[adr:adr + 7] = (0.0, 0.0, robot.legged.base_height, 1.0, 0.0, 0.0, 0.0)
    qpos[drive.qpos_index] = drive.default_pose


def hold_default_pose(robot: RobotDescription, seconds: float = HOLD_SECONDS) -> dict[str, float]:
    """Simulate PD holding the default pose; what the base (legged) or the joints (arm) did."""
    built = build_model(robot)
    model = built.model
    data = mujoco.MjData(model)
    drive = JointDrive(robot, model)
    place_default(robot, model, data.qpos, drive)
    mujoco.mj_forward(model, data)
    base_touch = 0.0
    servo = robot.actuator == "position"  # MuJoCo's position servos are the PD: they take the pose as targets
    for _ in range(round(seconds / model.opt.timestep)):
        q, qd = data.qpos[drive.qpos_index], data.qvel[drive.qvel_index]
        if servo:
            data.ctrl[drive.ctrl_index] = drive.default_pose
        else:
            drive.apply(data.ctrl[None], drive.pd(drive.default_pose, q, qd)[None], qd[None])
        mujoco.mj_step(model, data)
        if len(built.base_sensors):
            base_touch = max(base_touch, float(data.sensordata[built.base_sensors].max()))
    drift = float(np.abs(data.qpos[drive.qpos_index] - drive.default_pose).max())
    if robot.legged is None:
        return {"joint_drift": drift}
    base = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, robot.legged.base)
    return {"base_height": float(data.xpos[base, 2]), "upright": float(data.xmat[base, 8]),
            "base_contact": base_touch, "joint_drift": drift}


def check_robot(robot: RobotDescription) -> dict[str, Any]:
    """Mass and the hold test; raises RobotError (one line, file and key) on the first failure."""
    where = str(robot.source)
    mass = total_mass(robot)
    if abs(mass - robot.mass) > MASS_TOLERANCE * robot.mass:
        raise RobotError(f"{where}: mass: the model weighs {mass:.2f} kg, the description states {robot.mass:g} kg "
                         f"(more than {MASS_TOLERANCE:.0%} apart)")
    hold = hold_default_pose(robot)
    if robot.legged is not None:
        h0 = robot.legged.base_height
        if hold["base_height"] < STAND_HEIGHT * h0 or hold["upright"] < STAND_UPRIGHT or hold["base_contact"] > 0:
            raise RobotError(f"{where}: pd: the robot does not stand in its default pose: after {HOLD_SECONDS:g} s "
                             f"under PD the base is at {hold['base_height']:.3f} m (placed at {h0:g} m), upright "
                             f"{hold['upright']:.2f}, base contact {hold['base_contact'] > 0}")
        verdict = (f"stands in its default pose for {HOLD_SECONDS:g} s (base at {hold['base_height']:.3f} m of "
                   f"{h0:g} m, upright {hold['upright']:.3f})")
    else:
        if hold["joint_drift"] > ARM_HOLD:
            raise RobotError(f"{where}: pd: the arm does not hold its default pose: a joint drifted "
                             f"{hold['joint_drift']:.3f} rad in {HOLD_SECONDS:g} s (at most {ARM_HOLD} allowed)")
        verdict = f"holds its default pose for {HOLD_SECONDS:g} s (largest drift {hold['joint_drift']:.4f} rad)"
    return {"robot": robot.name, "file": where, "ok": True, "verdict": verdict, "mass": mass,
            "stated_mass": robot.mass, "hold": hold, **robot_facts(robot)}


def robot_facts(robot: RobotDescription) -> dict[str, Any]:
    """Per-joint limits, armature, damping and friction, and which geoms collide."""
    model = robot.model()
    joints = []
    for k, name in enumerate(robot.joints):
        j = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, name)
        dof = model.jnt_dofadr[j]
        speed = None if robot.velocity_limit is None else robot.velocity_limit[k]
        joints.append({"joint": name, "effort_limit": robot.effort_limit[k], "velocity_limit": speed,
                       "armature": float(model.dof_armature[dof]), "damping": float(model.dof_damping[dof]),
                       "frictionloss": float(model.dof_frictionloss[dof]),
                       "range": [float(v) for v in model.jnt_range[j]] if model.jnt_limited[j] else None,
                       "default": robot.default_pose[k], "kp": robot.kp[k], "kd": robot.kd[k]})
    colliding = []
    for g in range(model.ngeom):
        if model.geom_bodyid[g] == 0 or not (model.geom_contype[g] or model.geom_conaffinity[g]):
            continue
        body = mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_BODY, model.geom_bodyid[g])
        colliding.append(mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_GEOM, g) or f"{body}/geom{g}")
    return {"joints": joints, "colliding_geoms": colliding}
