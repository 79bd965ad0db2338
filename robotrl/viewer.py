"""`robotrl eval --viewer`: MuJoCo's interactive viewer, driven by a policy at the env's control rate.

The viewer is passive: this loop steps the env, copies its state into the viewer's `MjData` and keeps
real time itself (`Handle.sync` does not pace). Space pauses and resumes; closing the window stops.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

import mujoco
import numpy as np

import envs
from envs.scene import Scene, follow_camera
from robotrl.evaluate import PolicyFn

KEY_SPACE = 32  # GLFW key code
NO_DISPLAY = ("no display for the viewer ({why}): record the episodes instead with "
              "`robotrl eval RUN --video FILE.mp4`")


class NoDisplayError(RuntimeError):
    """The viewer cannot open a window here."""


def check_display() -> None:
    """Raise NoDisplayError (one line that suggests --video) when no window can be opened."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise NoDisplayError(NO_DISPLAY.format(why="DISPLAY is not set"))
    import glfw

    # Checked here because a failed init inside the viewer's thread would leave launch_passive waiting.
    if not glfw.init():
        raise NoDisplayError(NO_DISPLAY.format(why=f"cannot connect to {os.environ.get('DISPLAY', 'the display')}"))


class _Controls:
    """Keyboard state shared with the viewer's thread."""

    def __init__(self) -> None:
        self.paused = False

    def on_key(self, key: int) -> None:
        if key == KEY_SPACE:
            self.paused = not self.paused


def _overlay(handle: Any, episode: int, episodes: int, step: int, total: float, paused: bool) -> None:
    state = "paused: [space] resumes" if paused else "[space] pauses"
    handle.set_texts((mujoco.mjtFontScale.mjFONTSCALE_150, mujoco.mjtGridPos.mjGRID_TOPLEFT,
                      "episode\nstep\nreturn\n", f"{episode}/{episodes}\n{step}\n{total:.2f}\n{state}"))


def run_viewer(policy: PolicyFn, env_id: str, episodes: int = 10, seed: int = 123_456,
               env_kwargs: dict[str, Any] | None = None, show_ui: bool = False) -> dict[str, Any]:
    """Show `episodes` episodes of `policy` (batched obs -> batched actions) in real time.

    Returns the returns and lengths of the episodes that finished before the window was closed.
    """
    check_display()
    import mujoco.viewer

    env = envs.make(env_id, **(env_kwargs or {}))
    returns: list[float] = []
    lengths: list[int] = []
    try:
        obs, _ = env.reset(seed=seed)
        scene = Scene(env)
        controls = _Controls()
        handle = mujoco.viewer.launch_passive(scene.model, scene.data, key_callback=controls.on_key,
                                              show_left_ui=show_ui, show_right_ui=show_ui)
        camera = follow_camera(scene.model, scene.data)
        with handle.lock():
            for field in ("type", "trackbodyid", "distance", "azimuth", "elevation"):
                setattr(handle.cam, field, getattr(camera, field))
            handle.cam.lookat[:] = camera.lookat
        print(f"viewer: {env_id} at {scene.frame_rate:g} Hz, {episodes} episodes", file=sys.stderr, flush=True)
        dt = 1.0 / scene.frame_rate
        try:
            episode, step, total = 1, 0, 0.0
            deadline = time.perf_counter()
            while handle.is_running() and episode <= episodes:
                if controls.paused:
                    _overlay(handle, episode, episodes, step, total, paused=True)
                    handle.sync()
                    time.sleep(0.02)
                    deadline = time.perf_counter()
                    continue
                action = policy(np.asarray(obs, dtype=np.float32)[None])[0]
                obs, reward, terminated, truncated, _ = env.step(action)
                total += float(reward)
                step += 1
                with handle.lock():
                    scene.sync()
                _overlay(handle, episode, episodes, step, total, paused=False)
                handle.sync()
                if terminated or truncated:
                    returns.append(total)
                    lengths.append(step)
                    episode, step, total = episode + 1, 0, 0.0
                    if episode <= episodes:
                        obs, _ = env.reset(seed=seed + episode - 1)
                        with handle.lock():
                            scene.sync()
                deadline += dt
                lag = deadline - time.perf_counter()
                if lag > 0:
                    time.sleep(lag)
                elif lag < -0.25:
                    deadline = time.perf_counter()  # a stall: resume real time instead of racing to catch up
        finally:
            handle.close()
    finally:
        env.close()
    return {
        "episodes": len(returns),
        "return_mean": float(np.mean(returns)) if returns else float("nan"),
        "return_std": float(np.std(returns)) if returns else float("nan"),
        "length_mean": float(np.mean(lengths)) if lengths else float("nan"),
        "returns": returns,
        "lengths": lengths,
    }
