"""Which OpenGL MuJoCo uses, decided before `mujoco` is first imported (it reads MUJOCO_GL once).

Videos render offscreen through EGL or OSMesa, whichever makes a context on this machine; the
viewer draws into a window through GLFW.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

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
            raise RuntimeError("no offscreen OpenGL for rendering: neither EGL nor OSMesa makes a context "
                               "(install libegl-mesa0 or libosmesa6)")
    os.environ["MUJOCO_GL"] = chosen
    os.environ.setdefault("PYOPENGL_PLATFORM", chosen)
    return chosen


def renders_pixels(env_kwargs: Mapping[str, Any]) -> bool:
    """Whether a run's env kwargs turn its observations into renders (`pixels: false` is off)."""
    return env_kwargs.get("pixels", False) is not False


def offscreen_for(env_kwargs: Mapping[str, Any]) -> None:
    """Pick an offscreen OpenGL for a run whose observations are renders, when the user chose none:
    without it MuJoCo takes GLFW, which needs a display, and a pixel run fails on a headless machine."""
    if renders_pixels(env_kwargs) and not os.environ.get("MUJOCO_GL"):
        use_offscreen()


def config_env_kwargs(config: str | Path, overrides: list[str] | None = None) -> dict[str, Any]:
    """The env kwargs a YAML config file asks for, read as plain YAML (loading the config validates the
    env, which imports MuJoCo); an override of env.kwargs.pixels counts as asking for renders. {} where the
    file cannot be read: the load that follows names the problem."""
    import yaml

    try:
        data = yaml.safe_load(Path(config).read_text())
    except (OSError, yaml.YAMLError):
        data = None
    env = data.get("env") if isinstance(data, dict) else None
    kwargs = env.get("kwargs") if isinstance(env, dict) else None
    kwargs = dict(kwargs) if isinstance(kwargs, dict) else {}
    if any(o.startswith("env.kwargs.pixels") for o in overrides or []):
        kwargs["pixels"] = True  # at worst an offscreen OpenGL chosen for a run that does not render
    return kwargs


def run_env_kwargs(path: str | Path) -> dict[str, Any]:
    """The env kwargs in the config.yaml of a run folder, or of the run a checkpoint file lies in
    (RUN/checkpoints/FILE.pt), read without loading the checkpoint; {} where there is none."""
    path = Path(path)
    return config_env_kwargs((path if path.is_dir() else path.parent.parent) / "config.yaml")


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
