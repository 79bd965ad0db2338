"""What a viewer or a video needs from any MuJoCo env: its model, its current state, and a camera.

robotrl envs keep their state inside a `mujoco.batch.Batch` and Gymnasium's MuJoCo envs in an
`MjData`; `Scene` hides the difference by copying the live state into an `MjData` it owns, so the
viewer and the renderer never touch the simulation that the policy is driving.
"""

from __future__ import annotations

import gymnasium as gym
import mujoco
import numpy as np

from envs.robot_env import RobotEnv
from envs.wrappers import decision_skip

# Joint types that let a body translate: a robot rooted on one of these walks, swims or rolls away.
_MOVING_JOINTS = (int(mujoco.mjtJoint.mjJNT_FREE), int(mujoco.mjtJoint.mjJNT_SLIDE))


class Scene:
    """The model of a single env and an `MjData` that `sync()` fills with the env's current state."""

    def __init__(self, env: gym.Env) -> None:
        base = env.unwrapped
        if isinstance(base, RobotEnv):
            self.model = base.sim.model
            self._copy = lambda dst: base.sim.batch.get_data(0, dst)
        elif isinstance(getattr(base, "model", None), mujoco.MjModel) and isinstance(
            getattr(base, "data", None), mujoco.MjData
        ):
            self.model = base.model
            self._copy = lambda dst: mujoco.mj_copyData(dst, base.model, base.data)
        else:
            raise TypeError(f"{env.spec.id if env.spec else type(base).__name__} is not a MuJoCo env: "
                            "the viewer and videos need one")
        self.data = mujoco.MjData(self.model)
        # One frame per `step()`: a pixel policy's step holds its action for `skip` env steps.
        rate = float(env.metadata.get("render_fps") or 0) or 1.0 / self._control_dt(base)
        self.frame_rate = rate / decision_skip(env)
        self.sync()
        # An env that was never stepped may hold no derived fields yet; the camera is placed from them.
        mujoco.mj_forward(self.model, self.data)

    def _control_dt(self, base: gym.Env) -> float:
        dt = getattr(base, "dt", None)
        return float(dt) if dt else float(self.model.opt.timestep)

    def sync(self) -> mujoco.MjData:
        """Copy the env's current state into `self.data` (derived fields included) and return it."""
        self._copy(self.data)
        return self.data


def tracked_body(model: mujoco.MjModel) -> int | None:
    """The robot's root body when it can move through the world (free or slide joints), else None.

    The root is the heaviest non-mocap child of the world body; a fixed-base arm has no body to follow.
    """
    roots = [b for b in range(1, model.nbody) if model.body_parentid[b] == 0 and model.body_mocapid[b] < 0]
    if not roots:
        return None
    root = max(roots, key=lambda b: model.body_subtreemass[b])
    first, count = model.body_jntadr[root], model.body_jntnum[root]
    moving = any(int(model.jnt_type[j]) in _MOVING_JOINTS for j in range(first, first + count))
    return root if moving else None


def reach(model: mujoco.MjModel, data: mujoco.MjData, body: int, center: np.ndarray) -> float:
    """How far the geoms of `body`'s subtree (0: the whole model) reach from `center`, planes excluded."""
    in_tree = np.zeros(model.nbody, dtype=bool)
    for b in range(body, model.nbody):
        in_tree[b] = b == body or in_tree[model.body_parentid[b]]
    plane = int(mujoco.mjtGeom.mjGEOM_PLANE)
    geoms = [g for g in range(model.ngeom) if in_tree[model.geom_bodyid[g]] and int(model.geom_type[g]) != plane]
    if not geoms:
        return float(model.stat.extent)
    return float((np.linalg.norm(data.geom_xpos[geoms] - center, axis=1) + model.geom_rbound[geoms]).max())


def follow_camera(model: mujoco.MjModel, data: mujoco.MjData) -> mujoco.MjvCamera:
    """A free camera framing the robot: it tracks the root body of a robot that moves, and frames the
    whole (non-floor) model of a fixed one. `data` must hold a forward-computed state.
    """
    cam = mujoco.MjvCamera()
    mujoco.mjv_defaultFreeCamera(model, cam)
    body = tracked_body(model)
    if body is None:
        # The model's extent counts the floor and the lights: frame the geoms instead.
        cam.distance = 1.7 * reach(model, data, 0, np.asarray(cam.lookat))
    else:
        cam.type = mujoco.mjtCamera.mjCAMERA_TRACKING
        cam.trackbodyid = body
        cam.lookat[:] = data.subtree_com[body]
        cam.distance = max(4.0 * reach(model, data, body, data.subtree_com[body]), 0.5)
    return cam
