"""The simulation model of a described robot, as the tasks and `robotrl robot check` use it.

What a bare robot MJCF lacks for a task is added here, without editing the user's file: a floor under
a legged robot whose file has none (or the terrain of `envs.robots.terrain`), touch sensors around
each foot geom and each colliding geom of the base (contacts seen as arrays over the batch, without a
Python loop over MuJoCo's contact list).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import mujoco
import numpy as np

from envs.robots.description import RobotDescription

TOUCH_MARGIN = 1.15
"""Touch sites are the geom's shape scaled by this: a contact point lies on the geom's surface."""
_SITE_SHAPES = {int(mujoco.mjtGeom.mjGEOM_SPHERE), int(mujoco.mjtGeom.mjGEOM_CAPSULE),
                int(mujoco.mjtGeom.mjGEOM_ELLIPSOID), int(mujoco.mjtGeom.mjGEOM_CYLINDER),
                int(mujoco.mjtGeom.mjGEOM_BOX)}


@dataclass(frozen=True)
class RobotModel:
    """A compiled task model and where its contact sensors read in `sensordata`."""

    model: mujoco.MjModel
    foot_sensors: np.ndarray
    """sensordata index of each foot's touch sensor, in the description's feet order."""
    base_sensors: np.ndarray
    """sensordata indices of the base's touch sensors (any positive reading: the base touches something)."""


def _has_ground(model: mujoco.MjModel) -> bool:
    ground = (int(mujoco.mjtGeom.mjGEOM_PLANE), int(mujoco.mjtGeom.mjGEOM_HFIELD))
    return any(int(model.geom_type[g]) in ground and model.geom_bodyid[g] == 0 for g in range(model.ngeom))


def _add_touch(spec: mujoco.MjSpec, model: mujoco.MjModel, geom: int, label: str) -> None:
    """A touch sensor on a site enclosing `geom` (its bounding box for shapes a site cannot take)."""
    body = spec.bodies[int(model.geom_bodyid[geom])]
    gtype = int(model.geom_type[geom])
    if gtype in _SITE_SHAPES:
        size = model.geom_size[geom] * TOUCH_MARGIN
        pos, quat = model.geom_pos[geom], model.geom_quat[geom]
    else:
        gtype = int(mujoco.mjtGeom.mjGEOM_BOX)
        center, half = model.geom_aabb[geom, :3], model.geom_aabb[geom, 3:]
        pos = model.geom_pos[geom] + _rotate(model.geom_quat[geom], center)
        size, quat = half * TOUCH_MARGIN, model.geom_quat[geom]
    body.add_site(name=f"touch_{label}", type=mujoco.mjtGeom(gtype), size=size, pos=pos, quat=quat, group=5)
    spec.add_sensor(name=f"touch_{label}", type=mujoco.mjtSensor.mjSENS_TOUCH, objtype=mujoco.mjtObj.mjOBJ_SITE,
                    objname=f"touch_{label}")


def _rotate(quat: np.ndarray, v: np.ndarray) -> np.ndarray:
    out = np.zeros(3)
    mujoco.mju_rotVecQuat(out, np.asarray(v, dtype=np.float64), np.asarray(quat, dtype=np.float64))
    return out


def build_model(robot: RobotDescription, edit: Callable[[mujoco.MjSpec], None] | None = None) -> RobotModel:
    """Compile the robot for a task; `edit` adds to the spec first (a terrain that replaces the floor, a
    target marker). A legged robot gets a floor when neither its file nor `edit` gives it ground."""
    spec = robot.spec()
    bare = spec.compile()
    if edit is not None:
        edit(spec)
    if robot.legged is not None:
        if not _has_ground(spec.compile()):
            spec.worldbody.add_geom(name="floor", type=mujoco.mjtGeom.mjGEOM_PLANE, size=[0, 0, 0.05],
                                    rgba=[0.35, 0.4, 0.45, 1.0], friction=[1.0, 0.005, 0.0001],
                                    contype=1, conaffinity=1, condim=3)
            spec.worldbody.add_light(pos=[0, 0, 4], dir=[0, 0, -1], type=int(mujoco.mjtLightType.mjLIGHT_DIRECTIONAL))
        feet = [mujoco.mj_name2id(bare, mujoco.mjtObj.mjOBJ_GEOM, f) for f in robot.legged.feet]
        for k, g in enumerate(feet):
            _add_touch(spec, bare, g, f"foot{k}")
        base = mujoco.mj_name2id(bare, mujoco.mjtObj.mjOBJ_BODY, robot.legged.base)
        colliding = [g for g in range(bare.ngeom) if bare.geom_bodyid[g] == base and g not in feet
                     and (bare.geom_contype[g] or bare.geom_conaffinity[g])]
        for k, g in enumerate(colliding):
            _add_touch(spec, bare, g, f"base{k}")
    model = spec.compile()

    def sensors(prefix: str) -> np.ndarray:
        return np.array([model.sensor_adr[s] for s in range(model.nsensor)
                         if (mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_SENSOR, s) or "").startswith(prefix)],
                        dtype=np.int64)

    return RobotModel(model=model, foot_sensors=sensors("touch_foot"), base_sensors=sensors("touch_base"))


def servos_to_motors(model: mujoco.MjModel, robot: RobotDescription) -> None:
    """Turn a description's position servos (`actuator: position`) into torque motors in place, for torque
    action mode: control +-1 is +-effort_limit (the force range stays)."""
    for name, effort in zip(robot.actuators, robot.effort_limit, strict=True):
        a = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_ACTUATOR, name)
        model.actuator_gainprm[a, 0] = effort
        model.actuator_biasprm[a, :3] = 0.0
        model.actuator_ctrlrange[a] = (-1.0, 1.0)
