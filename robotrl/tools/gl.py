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


NO_DISPLAY = "no display for the viewer ({why}): record {what} instead with `{command}`"
EVAL_VIDEO = ("the episodes", "robotrl eval RUN --video FILE.mp4")


class NoDisplayError(RuntimeError):
    """The viewer cannot open a window here."""


def check_display(video_hint: tuple[str, str] = EVAL_VIDEO) -> None:
    """Raise NoDisplayError (one line that suggests the caller's --video command: what it records, the
    command) when no window can be opened."""
    what, command = video_hint
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise NoDisplayError(NO_DISPLAY.format(why="DISPLAY is not set", what=what, command=command))
    import glfw

    # Checked here because a failed init inside the viewer's thread would leave launch_passive waiting.
    if not glfw.init():
        raise NoDisplayError(NO_DISPLAY.format(why=f"cannot connect to {os.environ.get('DISPLAY', 'the display')}",
                                                 what=what, command=command))


def use_window(video_hint: tuple[str, str] = EVAL_VIDEO) -> None:
    """Check for a display, then set MUJOCO_GL for the viewer's window (GLFW), overriding an offscreen
    choice such as ./dev's egl."""
    check_display(video_hint)
    os.environ["MUJOCO_GL"] = "glfw"
