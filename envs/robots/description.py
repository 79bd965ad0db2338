"""Robot descriptions: the short YAML file beside an MJCF model that tells the tasks what they need.

A robot is data. A task never hard-codes joint names, poses, gains or limits: it reads them from a
`RobotDescription`, so a user's MJCF plus a description is enough to train, export and deploy. The
file (schema agreed on issue 20):

    name: go12                      # robot name
    mjcf: go12.xml                  # MJCF path, relative to this YAML, or menagerie:NAME[/ENTRY]
    kind: legged                    # legged | arm
    mass: 12.7                      # kg, the published total mass (`robotrl robot check`: within 10%)
    control_hz: 50                  # policy rate
    timestep: 0.005                 # physics timestep, s (control_hz * timestep * decimation = 1)
    joints: [FR_hip, ...]           # actuated joints in action order (default: the MJCF actuator order)
    default_pose: {".*_hip": 0.0}   # rad; keys are full-match regexes or names, the first match wins
    pd: {kp: {".*": 20.0}, kd: {".*": 0.5}}
    effort_limit: {".*": 23.7}      # N m, equal to the joint's motor actuator range
    velocity_limit: {".*": 30.0}    # rad/s, the motor's no-load speed
    actuator: motor                 # motor (default) | position, see below
    legged: {base: trunk, feet: [FR_foot, ...], base_height: 0.30}   # feet are geom names
    arm: {end_effector: ee_site, workspace: {center: [0.5, 0, 0.4], half_extent: [0.15, 0.25, 0.15]}}
    sources: "..."                  # which published figures the model follows

`actuator: motor`: the MJCF's actuators are torque motors and the task computes PD itself (so torque and
position modes share one model, under the motors' torque-speed line). `actuator: position`: they are
MuJoCo position servos whose kp, kv and force range are `pd` and `effort_limit`; MuJoCo computes the PD
at the physics rate (the damping implicitly under an implicit integrator), and torque mode turns them
into motors. A servo has no torque-speed line, so such a description states no `velocity_limit`.

Loading validates the file against itself and against the compiled MJCF (names, pose inside the joint
limits, effort limits equal to the actuators' ranges) and resolves every pattern to one number per
joint, so a task reads plain per-joint tuples. Every error is one line naming the file and the key.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mujoco
import numpy as np
import yaml

ROBOTS_DIR = Path(__file__).resolve().parent
"""Shipped robots live in envs/robots/<name>/robot.yaml."""
KINDS = ("legged", "arm")
_TOP_KEYS = ("name", "mjcf", "kind", "mass", "control_hz", "timestep", "joints", "default_pose", "pd",
             "effort_limit", "velocity_limit", "legged", "arm", "sources", "actuator")
_REQUIRED = ("name", "mjcf", "kind", "mass", "control_hz", "timestep", "default_pose", "pd", "effort_limit")
ACTUATORS = ("motor", "position")
EFFORT_TOLERANCE = 0.01
"""Relative difference allowed between a stated effort limit and the MJCF actuator's torque range."""


class RobotError(ValueError):
    """A robot description that does not fit the schema or its MJCF model."""


@dataclass(frozen=True)
class Legged:
    base: str
    """The floating base body (the one with the free joint)."""
    feet: tuple[str, ...]
    """Geoms that touch the ground, one per foot."""
    base_height: float
    """Height of the base above flat ground in the default pose, m (where episodes start)."""


@dataclass(frozen=True)
class Arm:
    end_effector: str
    """The site whose position the reach task controls."""
    center: tuple[float, float, float]
    """Centre of the target workspace box, m, world frame."""
    half_extent: tuple[float, float, float]
    """Half sizes of the workspace box; targets are drawn uniformly inside it."""


@dataclass(frozen=True)
class RobotDescription:
    """A validated description, every per-joint value resolved in action order."""

    source: Path
    """The YAML file (errors and `robot check` name it)."""
    name: str
    mjcf: Path
    kind: str
    mass: float
    control_hz: float
    timestep: float
    joints: tuple[str, ...]
    actuators: tuple[str, ...]
    """The motor actuator driving each joint, in action order."""
    default_pose: tuple[float, ...]
    kp: tuple[float, ...]
    kd: tuple[float, ...]
    effort_limit: tuple[float, ...]
    velocity_limit: tuple[float, ...] | None
    """None for `actuator: position` (servos have no torque-speed line)."""
    legged: Legged | None = None
    arm: Arm | None = None
    sources: str = ""
    actuator: str = "motor"
    """"motor": torque motors, PD computed by the task; "position": MuJoCo position servos are the PD."""

    @property
    def decimation(self) -> int:
        """Physics steps per policy step."""
        return round(1.0 / (self.control_hz * self.timestep))

    def spec(self) -> mujoco.MjSpec:
        """The MJCF as an editable spec with the description's timestep (tasks add floor and sensors)."""
        spec = mujoco.MjSpec.from_file(str(self.mjcf))
        spec.option.timestep = self.timestep
        return spec

    def model(self) -> mujoco.MjModel:
        """The compiled MJCF with the description's timestep."""
        return self.spec().compile()

    def facts(self) -> dict[str, Any]:
        """Plain-data summary for the ONNX metadata and `robotrl robot check --json`."""
        return {"name": self.name, "kind": self.kind, "mass": self.mass, "control_hz": self.control_hz,
                "timestep": self.timestep, "joints": list(self.joints), "default_pose": list(self.default_pose),
                "kp": list(self.kp), "kd": list(self.kd), "effort_limit": list(self.effort_limit),
                "velocity_limit": None if self.velocity_limit is None else list(self.velocity_limit)}


def shipped_robots() -> list[str]:
    """Names of the robots shipped in envs/robots/<name>/robot.yaml."""
    return sorted(p.parent.name for p in ROBOTS_DIR.glob("*/robot.yaml"))


def resolve_robot_path(robot: str | Path) -> Path:
    """A description file from a path, or from a shipped robot's name."""
    path = Path(robot)
    if path.is_file():
        return path
    shipped = ROBOTS_DIR / str(robot) / "robot.yaml"
    if shipped.is_file():
        return shipped
    raise RobotError(f"robot {str(robot)!r}: no such description file, and no shipped robot of that name "
                     f"(shipped: {', '.join(shipped_robots()) or 'none'})")


def load_robot(robot: str | Path) -> RobotDescription:
    """Read, validate and resolve a description (a YAML path or a shipped robot's name)."""
    if isinstance(robot, str) and robot.startswith("menagerie:"):
        from envs.robots.menagerie import menagerie_description

        menagerie_description(robot)
    path = resolve_robot_path(robot)
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise RobotError(f"{path}: not valid YAML: {str(exc).splitlines()[0]}") from exc
    return parse_robot(raw, path)


def parse_robot(raw: Any, path: Path, mjcf: Path | None = None) -> RobotDescription:
    """Validate a description's data (read from `path`); `mjcf` overrides the file's mjcf key."""
    where = str(path)
    if not isinstance(raw, dict):
        raise RobotError(f"{where}: expected a mapping at the top level, got {type(raw).__name__}")
    unknown = [k for k in raw if k not in _TOP_KEYS]
    if unknown:
        raise RobotError(f"{where}: {unknown[0]}: unknown key (expected one of: {', '.join(_TOP_KEYS)})")
    for key in _REQUIRED:
        if key not in raw and not (key == "mjcf" and mjcf is not None):
            raise RobotError(f"{where}: {key}: missing (required)")
    name = _string(raw["name"], where, "name")
    kind = _string(raw["kind"], where, "kind")
    if kind not in KINDS:
        raise RobotError(f"{where}: kind: expected one of {list(KINDS)}, got {kind!r}")
    mass = _positive(raw["mass"], where, "mass")
    control_hz = _positive(raw["control_hz"], where, "control_hz")
    timestep = _positive(raw["timestep"], where, "timestep")
    steps = 1.0 / (control_hz * timestep)
    if abs(steps - round(steps)) > 1e-6 or round(steps) < 1:
        raise RobotError(f"{where}: control_hz: 1 / (control_hz * timestep) must be a whole number of physics "
                         f"steps, got {steps:g}")
    if mjcf is None:
        ref = _string(raw["mjcf"], where, "mjcf")
        if ref.startswith("menagerie:"):
            from envs.robots.menagerie import menagerie_xml

            mjcf = menagerie_xml(ref, f"{where}: mjcf")
        else:
            mjcf = path.parent / ref
    if not mjcf.is_file():
        raise RobotError(f"{where}: mjcf: file {mjcf} not found")
    try:
        model = mujoco.MjModel.from_xml_path(str(mjcf))
    except ValueError as exc:
        raise RobotError(f"{where}: mjcf: {mjcf.name} does not compile: {str(exc).strip().splitlines()[0]}") from exc
    joints, actuators = _joints(raw.get("joints"), model, where, mjcf.name)
    default_pose = _per_joint(raw["default_pose"], joints, where, "default_pose")
    pd = raw["pd"]
    if not isinstance(pd, dict) or set(pd) != {"kp", "kd"}:
        raise RobotError(f"{where}: pd: expected a mapping with keys kp and kd, got {pd!r}")
    kp = _per_joint(pd["kp"], joints, where, "pd.kp", minimum=0.0)
    kd = _per_joint(pd["kd"], joints, where, "pd.kd", minimum=0.0)
    effort = _per_joint(raw["effort_limit"], joints, where, "effort_limit", minimum=0.0, strict=True)
    actuator = raw.get("actuator", "motor")
    if actuator not in ACTUATORS:
        raise RobotError(f"{where}: actuator: expected one of {list(ACTUATORS)}, got {actuator!r}")
    velocity = None
    if actuator == "motor":
        if "velocity_limit" not in raw:
            raise RobotError(f"{where}: velocity_limit: missing (required with actuator: motor)")
        velocity = _per_joint(raw["velocity_limit"], joints, where, "velocity_limit", minimum=0.0, strict=True)
    elif "velocity_limit" in raw:
        raise RobotError(f"{where}: velocity_limit: position servos have no torque-speed line; leave it out "
                         "with actuator: position")
    _check_pose(model, joints, default_pose, where)
    if actuator == "motor":
        _check_actuators(model, joints, actuators, effort, where, mjcf.name)
    else:
        _check_servos(model, joints, actuators, kp, kd, effort, where, mjcf.name)
    legged = arm = None
    if kind == "legged":
        legged = _legged(raw.get("legged"), model, where, mjcf.name)
    else:
        arm = _arm(raw.get("arm"), model, where, mjcf.name)
    sources = raw.get("sources", "")
    if not isinstance(sources, str):
        raise RobotError(f"{where}: sources: expected text, got {type(sources).__name__}")
    return RobotDescription(source=path, name=name, mjcf=mjcf, kind=kind, mass=mass, control_hz=control_hz,
                            timestep=timestep, joints=joints, actuators=actuators, default_pose=default_pose,
                            kp=kp, kd=kd, effort_limit=effort, velocity_limit=velocity, legged=legged, arm=arm,
                            sources=sources, actuator=actuator)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _string(value: Any, where: str, key: str) -> str:
    if not isinstance(value, str) or not value:
        raise RobotError(f"{where}: {key}: expected a non-empty string, got {value!r}")
    return value


def _positive(value: Any, where: str, key: str) -> float:
    if not _number(value) or value <= 0:
        raise RobotError(f"{where}: {key}: expected a positive number, got {value!r}")
    return float(value)


def _vector(value: Any, where: str, key: str, positive: bool = False) -> tuple[float, float, float]:
    if not (isinstance(value, list) and len(value) == 3 and all(map(_number, value))
            and (not positive or all(v > 0 for v in value))):
        raise RobotError(f"{where}: {key}: expected 3 {'positive ' if positive else ''}numbers, got {value!r}")
    return float(value[0]), float(value[1]), float(value[2])


def _name(model: mujoco.MjModel, kind: mujoco.mjtObj, i: int) -> str:
    return mujoco.mj_id2name(model, kind, i) or ""


def _joints(value: Any, model: mujoco.MjModel, where: str, mjcf: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Joints in action order and the motor actuator of each: every joint must have exactly one."""
    driver: dict[int, list[int]] = {}
    for a in range(model.nu):
        if int(model.actuator_trntype[a]) == int(mujoco.mjtTrn.mjTRN_JOINT):
            driver.setdefault(int(model.actuator_trnid[a, 0]), []).append(a)
    if value is None:
        ids = []
        for a in range(model.nu):
            if int(model.actuator_trntype[a]) != int(mujoco.mjtTrn.mjTRN_JOINT):
                raise RobotError(f"{where}: joints: actuator {_name(model, mujoco.mjtObj.mjOBJ_ACTUATOR, a)!r} of "
                                 f"{mjcf} does not drive a joint; list the actuated joints under joints")
            ids.append(int(model.actuator_trnid[a, 0]))
    else:
        if not (isinstance(value, list) and value and all(isinstance(v, str) for v in value)):
            raise RobotError(f"{where}: joints: expected a list of joint names, got {value!r}")
        ids = []
        for k, joint in enumerate(value):
            j = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, joint)
            if j < 0:
                known = [_name(model, mujoco.mjtObj.mjOBJ_JOINT, i) for i in range(model.njnt)]
                raise RobotError(f"{where}: joints[{k}]: {joint!r} is not a joint of {mjcf} "
                                 f"(its joints: {', '.join(n for n in known if n)})")
            ids.append(j)
    names = tuple(_name(model, mujoco.mjtObj.mjOBJ_JOINT, j) for j in ids)
    if len(set(ids)) != len(ids):
        raise RobotError(f"{where}: joints: a joint is listed twice ({', '.join(names)})")
    actuators = []
    for k, j in enumerate(ids):
        if int(model.jnt_type[j]) not in (int(mujoco.mjtJoint.mjJNT_HINGE), int(mujoco.mjtJoint.mjJNT_SLIDE)):
            raise RobotError(f"{where}: joints[{k}]: {names[k]!r} is not a hinge or slide joint of {mjcf}")
        found = driver.get(j, [])
        if len(found) != 1:
            raise RobotError(f"{where}: joints[{k}]: {names[k]!r} needs exactly one motor actuator in {mjcf}, "
                             f"found {len(found)}")
        actuators.append(_name(model, mujoco.mjtObj.mjOBJ_ACTUATOR, found[0]) or f"actuator {found[0]}")
    return names, tuple(actuators)


def _per_joint(value: Any, joints: tuple[str, ...], where: str, key: str, minimum: float | None = None,
               strict: bool = False) -> tuple[float, ...]:
    """One number per joint from a number or a {pattern: number} mapping; the first full match wins."""
    if _number(value):
        patterns = [(".*", value)]
    elif isinstance(value, dict) and value:
        patterns = list(value.items())
    else:
        raise RobotError(f"{where}: {key}: expected a number or a mapping of joint patterns to numbers, got {value!r}")
    compiled = []
    for pattern, number in patterns:
        if not isinstance(pattern, str):
            raise RobotError(f"{where}: {key}: pattern {pattern!r} is not a string")
        try:
            compiled.append((re.compile(pattern), number, pattern))
        except re.error as exc:
            raise RobotError(f"{where}: {key}.{pattern}: not a regular expression ({exc})") from exc
        if not _number(number) or (minimum is not None and (number <= minimum if strict else number < minimum)):
            bound = "" if minimum is None else (f" > {minimum:g}" if strict else f" >= {minimum:g}")
            raise RobotError(f"{where}: {key}.{pattern}: expected a number{bound}, got {number!r}")
    out = []
    for joint in joints:
        match = next((float(n) for rx, n, _ in compiled if rx.fullmatch(joint)), None)
        if match is None:
            keys = ", ".join(p for *_, p in compiled)
            raise RobotError(f"{where}: {key}: no key matches joint {joint!r} (keys: {keys})")
        out.append(match)
    return tuple(out)


def _check_pose(model: mujoco.MjModel, joints: tuple[str, ...], pose: tuple[float, ...], where: str) -> None:
    for joint, q in zip(joints, pose, strict=True):
        j = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, joint)
        if model.jnt_limited[j]:
            low, high = model.jnt_range[j]
            if not low <= q <= high:
                raise RobotError(f"{where}: default_pose: {joint} = {q:g} is outside the joint's limits "
                                 f"[{low:g}, {high:g}]")


def actuator_torque_range(model: mujoco.MjModel, actuator: int) -> tuple[float, float]:
    """(low, high) joint torque a motor actuator can apply: gear times its control range, cut by its force range."""
    gear = float(model.actuator_gear[actuator, 0])
    low, high = -np.inf, np.inf
    if model.actuator_ctrllimited[actuator]:
        ends = sorted(gear * model.actuator_ctrlrange[actuator])
        low, high = ends
    if model.actuator_forcelimited[actuator]:
        flow, fhigh = model.actuator_forcerange[actuator]
        low, high = max(low, gear * flow if gear > 0 else -np.inf), min(high, gear * fhigh if gear > 0 else np.inf)
    return float(low), float(high)


def _check_actuators(model: mujoco.MjModel, joints: tuple[str, ...], actuators: tuple[str, ...],
                     effort: tuple[float, ...], where: str, mjcf: str) -> None:
    """Motor actuators (torque, no bias) whose torque range equals the stated effort limit."""
    for joint, name, limit in zip(joints, actuators, effort, strict=True):
        a = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_ACTUATOR, name)
        motor = (int(model.actuator_gaintype[a]) == int(mujoco.mjtGain.mjGAIN_FIXED)
                 and int(model.actuator_biastype[a]) == int(mujoco.mjtBias.mjBIAS_NONE)
                 and int(model.actuator_dyntype[a]) == 0
                 and model.actuator_gear[a, 0] > 0)
        if not motor:
            raise RobotError(f"{where}: joints: {joint}'s actuator {name!r} in {mjcf} is not a motor (torque) "
                             "actuator; the task computes PD itself so that torque and position modes share one model")
        low, high = actuator_torque_range(model, a)
        tol = EFFORT_TOLERANCE
        if not (math.isclose(-low, limit, rel_tol=tol) and math.isclose(high, limit, rel_tol=tol)):
            raise RobotError(f"{where}: effort_limit: {joint} = {limit:g} N m, but actuator {name!r} in {mjcf} "
                             f"applies [{low:g}, {high:g}] N m (ctrlrange x gear, forcerange)")


def _check_servos(model: mujoco.MjModel, joints: tuple[str, ...], actuators: tuple[str, ...], kp: tuple[float, ...],
                  kd: tuple[float, ...], effort: tuple[float, ...], where: str, mjcf: str) -> None:
    """Position actuators (force kp (ctrl - q) - kv dq, cut to the force range) whose kp, kv and force range
    are the stated pd and effort limit."""
    for k, (joint, name) in enumerate(zip(joints, actuators, strict=True)):
        a = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_ACTUATOR, name)
        gain, bias = model.actuator_gainprm[a], model.actuator_biasprm[a]
        servo = (int(model.actuator_gaintype[a]) == int(mujoco.mjtGain.mjGAIN_FIXED)
                 and int(model.actuator_biastype[a]) == int(mujoco.mjtBias.mjBIAS_AFFINE)
                 and int(model.actuator_dyntype[a]) == 0 and model.actuator_gear[a, 0] == 1.0
                 and bias[0] == 0.0 and bias[1] == -gain[0])
        if not servo:
            raise RobotError(f"{where}: joints: {joint}'s actuator {name!r} in {mjcf} is not a position actuator "
                             "(gear 1); actuator: position needs one per joint")
        if not (math.isclose(gain[0], kp[k]) and math.isclose(-bias[2], kd[k])):
            raise RobotError(f"{where}: pd: {joint}: kp {kp[k]:g}, kd {kd[k]:g}, but actuator {name!r} in {mjcf} "
                             f"has kp {gain[0]:g}, kv {-bias[2]:g}")
        low, high = model.actuator_forcerange[a] if model.actuator_forcelimited[a] else (-np.inf, np.inf)
        if not (math.isclose(-low, effort[k], rel_tol=EFFORT_TOLERANCE)
                and math.isclose(high, effort[k], rel_tol=EFFORT_TOLERANCE)):
            raise RobotError(f"{where}: effort_limit: {joint} = {effort[k]:g} N m, but actuator {name!r} in {mjcf} "
                             f"has force range [{low:g}, {high:g}] N m")


def _legged(value: Any, model: mujoco.MjModel, where: str, mjcf: str) -> Legged:
    if not isinstance(value, dict) or set(value) != {"base", "feet", "base_height"}:
        raise RobotError(f"{where}: legged: expected a mapping with base, feet and base_height, got {value!r}")
    base = _string(value["base"], where, "legged.base")
    b = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, base)
    if b < 0:
        raise RobotError(f"{where}: legged.base: {base!r} is not a body of {mjcf}")
    free = [j for j in range(model.body_jntadr[b], model.body_jntadr[b] + model.body_jntnum[b])
            if int(model.jnt_type[j]) == int(mujoco.mjtJoint.mjJNT_FREE)]
    if not free:
        raise RobotError(f"{where}: legged.base: body {base!r} of {mjcf} has no free joint")
    feet = value["feet"]
    if not (isinstance(feet, list) and feet and all(isinstance(f, str) for f in feet)):
        raise RobotError(f"{where}: legged.feet: expected a list of geom names, got {feet!r}")
    for k, foot in enumerate(feet):
        if mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_GEOM, foot) < 0:
            raise RobotError(f"{where}: legged.feet[{k}]: {foot!r} is not a geom of {mjcf}")
    height = _positive(value["base_height"], where, "legged.base_height")
    return Legged(base=base, feet=tuple(feet), base_height=height)


def _arm(value: Any, model: mujoco.MjModel, where: str, mjcf: str) -> Arm:
    if not isinstance(value, dict) or set(value) != {"end_effector", "workspace"}:
        raise RobotError(f"{where}: arm: expected a mapping with end_effector and workspace, got {value!r}")
    site = _string(value["end_effector"], where, "arm.end_effector")
    if mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SITE, site) < 0:
        raise RobotError(f"{where}: arm.end_effector: {site!r} is not a site of {mjcf}")
    space = value["workspace"]
    if not isinstance(space, dict) or set(space) != {"center", "half_extent"}:
        raise RobotError(f"{where}: arm.workspace: expected a mapping with center and half_extent, got {space!r}")
    return Arm(end_effector=site, center=_vector(space["center"], where, "arm.workspace.center"),
               half_extent=_vector(space["half_extent"], where, "arm.workspace.half_extent", positive=True))
