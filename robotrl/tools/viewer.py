"""`robotrl eval --viewer`: MuJoCo's interactive viewer, driven by a policy at the env's control rate.

The viewer is passive: this loop steps the env, copies its state into the viewer's `MjData` and keeps
real time itself (`Handle.sync` does not pace). Space pauses and resumes; closing the window stops.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any

import mujoco
import numpy as np

import envs
from envs.scene import Scene, follow_camera
from robotrl.tools.gl import check_display
from robotrl.train.evaluate import PolicyFn

KEY_SPACE = 32  # GLFW key code


class _Controls:
    """Keyboard state shared with the viewer's thread."""

    def __init__(self) -> None:
        self.paused = False

    def on_key(self, key: int) -> None:
        if key == KEY_SPACE:
            self.paused = not self.paused


class _Overlay:
    """The episode, step and return in the window's corner, set from a thread of its own.

    `Handle.set_texts` waits for the viewer to draw the next frame, which software GL makes slow;
    the control loop only stores the latest values and never waits on drawing.
    """

    def __init__(self, handle: Any, episodes: int) -> None:
        self.handle, self.episodes = handle, episodes
        self.values: tuple[int, int, float, bool] = (1, 0, 0.0, False)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="viewer-overlay", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        shown = None
        while not self._stop.wait(0.05):
            if self.values != shown and self.handle.is_running():
                shown = self.values
                episode, step, total, paused = shown
                state = "paused: [space] resumes" if paused else "[space] pauses"
                self.handle.set_texts((mujoco.mjtFontScale.mjFONTSCALE_150, mujoco.mjtGridPos.mjGRID_TOPLEFT,
                                       "episode\nstep\nreturn\n",
                                       f"{episode}/{self.episodes}\n{step}\n{total:.2f}\n{state}"))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=1.0)


def run_viewer(policy: PolicyFn, env_id: str, episodes: int = 10, seed: int = 123_456,
               env_kwargs: dict[str, Any] | None = None, show_ui: bool = False) -> dict[str, Any]:
    """Show `episodes` episodes of `policy` (batched obs -> batched actions) in real time.

    MUJOCO_GL must be glfw (or unset) before mujoco is first imported (`robotrl.tools.gl.use_window`).

    Returns the returns and lengths of the episodes that finished before the window was closed, and
    the seconds they were shown for (paused time included).
    """
    check_display()
    import mujoco.viewer

    env = envs.make(env_id, **(env_kwargs or {}))
    returns: list[float] = []
    lengths: list[int] = []
    successes: list[float] = []  # the task's own judgement, as evaluations and videos count it
    try:
        obs, _ = env.reset(seed=seed)
        scene = Scene(env)
        controls = _Controls()
        before = set(threading.enumerate())
        handle = mujoco.viewer.launch_passive(scene.model, scene.data, key_callback=controls.on_key,
                                              show_left_ui=show_ui, show_right_ui=show_ui)
        window_threads = set(threading.enumerate()) - before
        camera = follow_camera(scene.model, scene.data)
        with handle.lock():
            for field in ("type", "trackbodyid", "distance", "azimuth", "elevation"):
                setattr(handle.cam, field, getattr(camera, field))
            handle.cam.lookat[:] = camera.lookat
        print(f"viewer: {env_id} at {scene.frame_rate:g} Hz, {episodes} episodes", file=sys.stderr, flush=True)
        dt = 1.0 / scene.frame_rate
        overlay = _Overlay(handle, episodes)
        try:
            episode, step, total = 1, 0, 0.0
            start = deadline = time.perf_counter()
            while handle.is_running() and episode <= episodes:
                overlay.values = (episode, step, total, controls.paused)
                if controls.paused:
                    handle.sync()
                    time.sleep(0.02)
                    deadline = time.perf_counter()
                    continue
                action = policy(np.asarray(obs, dtype=np.float32)[None])[0]
                obs, reward, terminated, truncated, info = env.step(action)
                total += float(reward)
                step += 1
                with handle.lock():
                    scene.sync()
                handle.sync()
                if terminated or truncated:
                    returns.append(total)
                    lengths.append(step)
                    if "is_success" in info:
                        successes.append(float(info["is_success"]))
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
            wall_s = time.perf_counter() - start
        finally:
            overlay.close()
            handle.close()
            # GLFW is terminated at interpreter exit: the window's thread must be gone by then (else SIGSEGV).
            for thread in window_threads:
                thread.join(timeout=10.0)
    finally:
        env.close()
    return {
        "episodes": len(returns),
        # None (JSON null) when the window closed before an episode ended: NaN is not JSON.
        "return_mean": float(np.mean(returns)) if returns else None,
        "return_std": float(np.std(returns)) if returns else None,
        "length_mean": float(np.mean(lengths)) if lengths else None,
        "success_rate": float(np.mean(successes)) if successes else None,
        "returns": returns,
        "lengths": lengths,
        "wall_s": wall_s,
    }
