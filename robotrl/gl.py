"""Which OpenGL MuJoCo uses, decided before `mujoco` is first imported (it reads MUJOCO_GL once).

Videos render offscreen through EGL or OSMesa, whichever makes a context on this machine; the
viewer draws into a window through GLFW.
"""

from __future__ import annotations

import os
import subprocess
import sys

OFFSCREEN = ("egl", "osmesa")
_PROBE = "import mujoco; ctx = mujoco.GLContext(16, 16); ctx.make_current(); ctx.free()"


def _works(backend: str) -> bool:
    # A backend that fails can leave the process unable to try another: probe in a child process.
    env = {**os.environ, "MUJOCO_GL": backend, "PYOPENGL_PLATFORM": backend}
    try:
        return subprocess.run([sys.executable, "-c", _PROBE], env=env, capture_output=True,
                              timeout=120).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def use_offscreen() -> str:
    """Set MUJOCO_GL for offscreen rendering: the user's egl/osmesa choice, else the first that works."""
    chosen = os.environ.get("MUJOCO_GL", "").strip().lower()
    if chosen not in OFFSCREEN:
        chosen = next((b for b in OFFSCREEN if _works(b)), "")
        if not chosen:
            raise RuntimeError("no offscreen OpenGL for --video: neither EGL nor OSMesa makes a context "
                               "(install libegl-mesa0 or libosmesa6)")
    os.environ["MUJOCO_GL"] = chosen
    os.environ.setdefault("PYOPENGL_PLATFORM", chosen)
    return chosen


def use_window() -> None:
    """Set MUJOCO_GL for the viewer's window (GLFW), overriding an offscreen choice such as ./dev's egl."""
    os.environ["MUJOCO_GL"] = "glfw"
