"""MuJoCo Menagerie models as a description's MJCF: `mjcf: menagerie:NAME[/ENTRY]`.

The `mujoco-menagerie` package (pip install mujoco-menagerie) knows every Menagerie robot and its
entry points (`go1`, `scene`, ...) and downloads a model on first use into its cache, so the first
load needs a network; after that, or with MENAGERIE_ROOT pointing at a checkout laid out as the
Menagerie repository (ROOT/NAME/ENTRY.xml), it works offline. The description file still says what
the tasks need (joints, pose, gains, limits, base and feet or end effector), and Menagerie's MJCF
must use motor actuators like any other (many Menagerie robots ship position actuators: copy the
model and turn them into motors with forcerange = the effort limit). From the path on, nothing in the
stack knows where the MJCF came from.
"""

from __future__ import annotations

from pathlib import Path
from typing import NoReturn

from envs.robots.description import RobotError

PREFIX = "menagerie:"
INSTALL_HINT = "pip install mujoco-menagerie (it downloads the model on first use: that needs a network)"


def is_menagerie(ref: str) -> bool:
    return isinstance(ref, str) and ref.startswith(PREFIX)


def parse_ref(ref: str) -> tuple[str, str | None]:
    """(robot name, entry point or None for the robot's default model) of `menagerie:NAME[/ENTRY]`."""
    body = ref[len(PREFIX):]
    name, _, entry = body.partition("/")
    if not name or "/" in entry:
        raise RobotError(f"{ref!r}: expected menagerie:NAME or menagerie:NAME/ENTRY")
    return name, entry or None


def menagerie_xml(ref: str, where: str) -> Path:
    """The local path of a Menagerie entry point's XML (downloaded into the package's cache if needed)."""
    name, entry = parse_ref(ref)
    try:
        import mujoco_menagerie as mm
    except ImportError:
        raise RobotError(f"{where}: {ref} needs the mujoco-menagerie package: {INSTALL_HINT}") from None
    try:
        robot = mm.get(name)
    except mm.UnknownRobotError:
        raise RobotError(f"{where}: {ref}: Menagerie has no robot {name!r} (mujoco-menagerie names)") from None
    entry = entry or robot.default_model
    if entry not in robot.entry_names:
        raise RobotError(f"{where}: {ref}: {name} has no entry point {entry!r} "
                         f"(entries: {', '.join(robot.entry_names)})")
    try:
        return Path(robot.xml(entry))
    except mm.MenagerieError as exc:
        raise RobotError(f"{where}: {ref}: {str(exc).splitlines()[0]} (the first load downloads the model and "
                         "needs a network; or set MENAGERIE_ROOT to a local checkout)") from exc


def menagerie_description(ref: str) -> NoReturn:
    """A bare `menagerie:...` robot: the model alone does not say what the tasks need."""
    parse_ref(ref)
    raise RobotError(f"robot {ref!r}: a Menagerie model needs a description: write robot.yaml with "
                     f"`mjcf: {ref}` (joints, default_pose, pd, limits, legged/arm) and pass its path")
