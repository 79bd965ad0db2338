"""Pixel observations for any MuJoCo env: the last `stack` grayscale frames, rendered offscreen.

One frame cannot show velocity; a stack of the last four can (DQN, Mnih et al. 2015). Frames are
rendered directly at the small size, converted to uint8 grayscale, and stacked oldest first.
Rendering here is software OpenGL: the default 4096^2 shadow map and 4x multisampling cost far more
than the 84x84 image (9 frames/s with them, over 100 without, measured on the 2-core machine), so the
renderer gets a copy of the model without them, and reflections and the skybox are off.
After a reset the stack holds copies of the first frame, which is what the replay memory reconstructs
when it shares frames between stacks.
"""

from __future__ import annotations

import copy
from collections import deque
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import mujoco
import numpy as np
from gymnasium import spaces

GRAY_WEIGHTS = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def _model_and_data(env: gym.Env) -> tuple[mujoco.MjModel, Callable[[], mujoco.MjData]]:
    """The MjModel and a getter of the current MjData of a robotrl env or a Gymnasium MuJoCo env."""
    inner = env.unwrapped
    sim = getattr(inner, "sim", None)
    if sim is not None and hasattr(sim, "qpos"):
        # Copying the state into a scratch MjData and running kinematics is cheaper than
        # materializing the batch's MjData (about 1.4 ms) every frame.
        scratch = mujoco.MjData(sim.model)
        mocap_pos, mocap_quat = sim.bind("mocap_pos"), sim.bind("mocap_quat")

        def data() -> mujoco.MjData:
            scratch.qpos[:], scratch.qvel[:] = sim.qpos[0], sim.qvel[0]
            scratch.mocap_pos[:], scratch.mocap_quat[:] = mocap_pos[0], mocap_quat[0]
            mujoco.mj_kinematics(sim.model, scratch)
            mujoco.mj_camlight(sim.model, scratch)  # fixed cameras and lights follow the bodies
            return scratch

        return sim.model, data
    if hasattr(inner, "model") and hasattr(inner, "data"):
        return inner.model, lambda: inner.data
    raise ValueError(f"pixels: {inner} is not a MuJoCo env (no simulation to render)")


def fast_renderer(model: mujoco.MjModel, size: int) -> mujoco.Renderer:
    """An offscreen renderer without shadow map, multisampling, reflections or skybox."""
    model = copy.copy(model)
    model.vis.quality.shadowsize = 0
    model.vis.quality.offsamples = 0
    renderer = mujoco.Renderer(model, size, size)
    for flag in (mujoco.mjtRndFlag.mjRND_SHADOW, mujoco.mjtRndFlag.mjRND_REFLECTION, mujoco.mjtRndFlag.mjRND_SKYBOX):
        renderer.scene.flags[flag] = False
    return renderer


class PixelObservation(gym.Wrapper):
    """Replaces the observation with a (stack, size, size) uint8 stack of grayscale renders.

    `skip` > 1 holds each action for that many steps of the env and renders only after the last, summing
    their rewards (the frame skip of DQN's Atari agents): a decision then spans more time, so the same
    discount sees further ahead, and rendering, the cost here, happens once per decision.

    `delay` > 0 shows each frame that many decisions late, as a camera pipeline does (after a reset the
    first frame stands in for the ones not yet taken): the state observation's `obs_delay` cannot reach
    renders, which are drawn from the current state."""

    def __init__(self, env: gym.Env, size: int = 84, stack: int = 4, camera: str | int = -1,
                 skip: int = 1, delay: int = 0) -> None:
        super().__init__(env)
        if size < 8 or stack < 1 or skip < 1 or delay < 0:
            raise ValueError(f"pixels: expected size >= 8, stack >= 1, skip >= 1 and delay >= 0, got size {size}, "
                             f"stack {stack}, skip {skip}, delay {delay}")
        self.delay = int(delay)
        self._late: deque[np.ndarray] = deque()  # rendered, not shown yet (delay frames)
        self.model, self._data = _model_and_data(env)
        if isinstance(camera, str) and mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_CAMERA, camera) < 0:
            raise ValueError(f"pixels.camera: no camera named {camera!r} in the model")
        self.camera, self.size, self.stack, self.skip = camera, size, stack, int(skip)
        try:
            self.renderer = fast_renderer(self.model, size)
        except mujoco.FatalError as exc:
            raise RuntimeError("pixels: no OpenGL context for offscreen rendering; start with MUJOCO_GL=egl "
                               f"(or osmesa) in the environment ({exc})") from exc
        self.frames = np.zeros((stack, size, size), dtype=np.uint8)
        self.observation_space = spaces.Box(0, 255, shape=self.frames.shape, dtype=np.uint8)

    def render_gray(self) -> np.ndarray:
        """One (size, size) uint8 grayscale frame of the current state."""
        self.renderer.update_scene(self._data(), camera=self.camera)
        rgb = self.renderer.render()
        return (rgb.astype(np.float32) @ GRAY_WEIGHTS).astype(np.uint8)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        _, info = self.env.reset(seed=seed, options=options)
        first = self.render_gray()
        self.frames[:] = first
        self._late = deque([first] * self.delay)
        return self.frames.copy(), info

    def step(self, action: Any):
        total = 0.0
        for _ in range(self.skip):
            _, reward, terminated, truncated, info = self.env.step(action)
            total += float(reward)
            if terminated or truncated:
                break
        reward = total if self.skip > 1 else reward
        self.frames[:-1] = self.frames[1:]
        frame = self.render_gray()
        if self.delay:
            self._late.append(frame)
            frame = self._late.popleft()
        self.frames[-1] = frame
        return self.frames.copy(), reward, terminated, truncated, info

    def close(self) -> None:
        if self.renderer is not None:
            self.renderer.close()
            self.renderer = None
        super().close()
