"""The description an exported policy carries, read and checked without the onnx package.

policies/export.py writes it as JSON under one metadata key; this module is its reader on the robot.
A file with a missing key, a newer format or sizes that disagree with its own graph is refused here,
before any loop starts.

Format 1 is a flat float32 observation of obs_dim values. Format 2 adds `obs_shape` and `obs_dtype`
(a pixel policy takes uint8 frame stacks [stack, size, size]) and `pixels` (size, stack, camera: how
the frames are rendered; skip, where present: env steps each action is held for, one frame after the
last); a format-1 file reads as obs_shape [obs_dim], float32, no pixels.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np

FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
METADATA_KEY = "robotrl.policy"
ACTION_MODES = ("torque", "position")
OBS_DTYPES = ("float32", "uint8")


@dataclass(frozen=True)
class PolicySpec:
    """What a policy expects of its robot."""

    env_id: str
    algo: str
    train_steps: int
    obs_dim: int
    act_dim: int
    obs_fields: tuple[tuple[str, int], ...]
    action_low: np.ndarray
    action_high: np.ndarray
    action_mode: str
    pd: dict[str, Any] | None
    """Position mode: kp, kd, default_pose (per joint) and action_scale (target = default_pose + scale x action)."""
    control_hz: float
    decimation: int
    quantized: str | None
    input_name: str
    output_name: str
    obs_shape: tuple[int, ...] = ()
    """One observation's shape: (obs_dim,), or (stack, size, size) for frames; () reads as (obs_dim,)."""
    obs_dtype: str = "float32"
    pixels: dict[str, Any] | None = None
    """How the frames are rendered (size, stack, camera; skip), for a policy trained on pixels."""
    robot: dict[str, Any] | None = None
    """Per joint in action order: `joints`, `default_pose`, `kp`, `kd`, `effort_limit`, `velocity_limit`,
    and `action` (`kind` torque or position, per-joint `scale`, `meaning`): how a driver maps actions to
    motors; `env_kwargs`: what rebuilds the simulated robot (`robot`, `action_mode`). Absent for envs that
    are not robots with named joints."""
    obs_units: tuple[tuple[str, str, float], ...] | None = None
    """Per observation field: (name, units, scale): the value the policy sees is scale x the quantity."""
    train_env_kwargs: dict[str, Any] | None = None
    """The env kwargs the policy was trained with (metadata `env_kwargs`; absent in files exported before
    it was written): its task's command ranges, reward weights, terrain, targets."""

    def __post_init__(self) -> None:
        if not self.obs_shape:
            object.__setattr__(self, "obs_shape", (self.obs_dim,))

    def env_kwargs(self) -> dict[str, Any]:
        """Env kwargs that make a simulated robot the task the policy was trained on: the training kwargs,
        then the robot description and action mode (`robot.env_kwargs`) and the pixel rendering on top. With
        only the robot's, a sim run would score another task (default command ranges, flat ground)."""
        kwargs = {**(self.train_env_kwargs or {}), **((self.robot or {}).get("env_kwargs") or {})}
        if not self.pixels:
            return kwargs
        trained = kwargs.get("pixels")  # the run's own pixels (a delay, in files written before it was described)
        return {**kwargs, "pixels": {**(trained if isinstance(trained, dict) else {}), **self.pixels}}

    def to_dict(self) -> dict[str, Any]:
        return {"env_id": self.env_id, "algo": self.algo, "train_steps": self.train_steps,
                "obs_dim": self.obs_dim, "act_dim": self.act_dim,
                "obs_fields": [list(f) for f in self.obs_fields],
                "obs_shape": list(self.obs_shape), "obs_dtype": self.obs_dtype, "pixels": self.pixels,
                "action_low": self.action_low.tolist(), "action_high": self.action_high.tolist(),
                "action_mode": self.action_mode, "pd": self.pd, "control_hz": self.control_hz,
                "decimation": self.decimation, "quantized": self.quantized, "robot": self.robot,
                "obs_units": None if self.obs_units is None else [list(u) for u in self.obs_units],
                "env_kwargs": self.train_env_kwargs}


def _get(data: dict[str, Any], key: str, kind: type | tuple[type, ...], source: str) -> Any:
    if key not in data:
        raise ValueError(f"{source}: metadata key {key!r} is missing")
    value = data[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ValueError(f"{source}: metadata key {key!r}: expected {kind}, got {value!r}")
    return value


def _obs_fields(entries: list[Any], source: str) -> tuple[tuple[str, int], ...]:
    """`obs_fields`: [name, size] per observation field, in order, each size a positive integer."""
    for entry in entries:
        if not (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], str)
                and isinstance(entry[1], int) and not isinstance(entry[1], bool) and entry[1] > 0):
            raise ValueError(f"{source}: metadata obs_fields: expected [name, size] with a positive integer size "
                             f"for each field, got {entry!r}")
    return tuple((name, size) for name, size in entries)


def parse_spec(raw: str | None, source: str) -> PolicySpec:
    """The PolicySpec of a metadata JSON string; `source` (the file name) prefixes every error."""
    if raw is None:
        raise ValueError(f"{source}: no {METADATA_KEY!r} metadata (not exported by robotrl export)")
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{source}: metadata {METADATA_KEY!r} is not JSON: {exc}") from exc
    version = _get(data, "format_version", int, source)
    if version not in READABLE_VERSIONS:
        raise ValueError(f"{source}: metadata format_version {version}, this runner reads "
                         f"{' and '.join(map(str, READABLE_VERSIONS))}")
    obs_dim = _get(data, "obs_dim", int, source)
    act_dim = _get(data, "act_dim", int, source)
    fields = _obs_fields(_get(data, "obs_fields", list, source), source)
    if sum(size for _, size in fields) != obs_dim:
        raise ValueError(f"{source}: metadata obs_fields add up to {sum(s for _, s in fields)}, obs_dim is {obs_dim}")
    low = np.asarray(_get(data, "action_low", list, source), dtype=np.float32)
    high = np.asarray(_get(data, "action_high", list, source), dtype=np.float32)
    if low.shape != (act_dim,) or high.shape != (act_dim,):
        raise ValueError(f"{source}: metadata action bounds have {low.shape[0]}/{high.shape[0]} entries, "
                         f"act_dim is {act_dim}")
    if not np.all(low <= high):
        raise ValueError(f"{source}: metadata action_low exceeds action_high")
    mode = _get(data, "action_mode", str, source)
    if mode not in ACTION_MODES:
        raise ValueError(f"{source}: metadata action_mode {mode!r}, expected one of {ACTION_MODES}")
    pd = data.get("pd")
    if mode == "position" and not (isinstance(pd, dict) and {"kp", "kd", "default_pose"} <= set(pd)):
        raise ValueError(f"{source}: metadata action_mode 'position' needs pd.kp, pd.kd and pd.default_pose")
    obs_shape, obs_dtype, pixels = (_observation(data, obs_dim, source) if version >= 2
                                    else ((obs_dim,), "float32", None))
    return PolicySpec(
        env_id=_get(data, "env_id", str, source), algo=_get(data, "algo", str, source),
        train_steps=_get(data, "train_steps", int, source), obs_dim=obs_dim, act_dim=act_dim,
        obs_fields=fields, action_low=low, action_high=high, action_mode=mode, pd=pd,
        control_hz=float(_get(data, "control_hz", (int, float), source)),
        decimation=_get(data, "decimation", int, source), quantized=data.get("quantized"),
        input_name=_get(data, "input", str, source), output_name=_get(data, "output", str, source),
        obs_shape=obs_shape, obs_dtype=obs_dtype, pixels=pixels, robot=_robot(data, act_dim, source),
        obs_units=_obs_units(data, fields, source), train_env_kwargs=_env_kwargs(data, source))


def _env_kwargs(data: dict[str, Any], source: str) -> dict[str, Any] | None:
    kwargs = data.get("env_kwargs")
    if kwargs is not None and not isinstance(kwargs, dict):
        raise ValueError(f"{source}: metadata env_kwargs: expected a mapping, got {kwargs!r}")
    return kwargs


ROBOT_JOINT_KEYS = ("default_pose", "kp", "kd", "effort_limit")


def _robot(data: dict[str, Any], act_dim: int, source: str) -> dict[str, Any] | None:
    """The optional `robot` entry, checked: one name and one number per action for each joint key."""
    robot = data.get("robot")
    if robot is None:
        return None
    if not isinstance(robot, dict):
        raise ValueError(f"{source}: metadata robot: expected a mapping, got {type(robot).__name__}")
    joints = robot.get("joints")
    if not (isinstance(joints, list) and len(joints) == act_dim and all(isinstance(j, str) for j in joints)):
        raise ValueError(f"{source}: metadata robot.joints: expected {act_dim} joint names, got {joints!r}")
    for key in ROBOT_JOINT_KEYS:
        values = robot.get(key)
        if not (isinstance(values, list) and len(values) == act_dim
                and all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)):
            raise ValueError(f"{source}: metadata robot.{key}: expected {act_dim} numbers, got {values!r}")
    action = robot.get("action")
    if not (isinstance(action, dict) and action.get("kind") in ACTION_MODES
            and isinstance(action.get("scale"), list) and len(action["scale"]) == act_dim):
        raise ValueError(f"{source}: metadata robot.action: expected kind in {ACTION_MODES} and {act_dim} scales, "
                         f"got {action!r}")
    return robot


def _obs_units(data: dict[str, Any], fields: tuple[tuple[str, int], ...],
               source: str) -> tuple[tuple[str, str, float], ...] | None:
    """The optional `obs_units` entry: (name, units, scale) for each observation field, in order."""
    units = data.get("obs_units")
    if units is None:
        return None
    names = [name for name, _ in fields]
    if not (isinstance(units, list) and [u[0] if isinstance(u, list) and len(u) == 3 else None for u in units] == names
            and all(isinstance(u[1], str) and isinstance(u[2], int | float) for u in units)):
        raise ValueError(f"{source}: metadata obs_units: expected [name, units, scale] for each of {names}, "
                         f"got {units!r}")
    return tuple((str(n), str(u), float(s)) for n, u, s in units)


def _observation(data: dict[str, Any], obs_dim: int, source: str) -> tuple[tuple[int, ...], str, dict | None]:
    """(obs_shape, obs_dtype, pixels) of a format-2 description, checked against obs_dim."""
    shape = tuple(_get(data, "obs_shape", list, source))
    if not shape or not all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in shape):
        raise ValueError(f"{source}: metadata obs_shape {list(shape)}: expected positive integers")
    if int(np.prod(shape)) != obs_dim:
        raise ValueError(f"{source}: metadata obs_shape {list(shape)} holds {int(np.prod(shape))} values, "
                         f"obs_dim is {obs_dim}")
    dtype = _get(data, "obs_dtype", str, source)
    if dtype not in OBS_DTYPES:
        raise ValueError(f"{source}: metadata obs_dtype {dtype!r}, expected one of {OBS_DTYPES}")
    pixels = data.get("pixels")
    if pixels is not None:
        if not (isinstance(pixels, dict) and {"size", "stack", "camera"} <= set(pixels)):
            raise ValueError(f"{source}: metadata pixels needs size, stack and camera, got {pixels!r}")
        if list(shape) != [pixels["stack"], pixels["size"], pixels["size"]]:
            raise ValueError(f"{source}: metadata obs_shape {list(shape)} is not pixels' (stack, size, size)")
    return shape, dtype, pixels


@dataclass(frozen=True)
class RobotSpec:
    """What a robot backend reports about itself: sizes and actuator bounds."""

    obs_dim: int
    act_dim: int
    action_low: np.ndarray
    action_high: np.ndarray

    @classmethod
    def from_spaces(cls, observation_space: Any, action_space: Any) -> RobotSpec:
        """From Box-like spaces (anything with .shape, .low, .high): no Gymnasium import needed."""
        return cls(obs_dim=int(np.prod(observation_space.shape)), act_dim=int(np.prod(action_space.shape)),
                   action_low=np.asarray(action_space.low, dtype=np.float32).reshape(-1),
                   action_high=np.asarray(action_space.high, dtype=np.float32).reshape(-1))


def check_compatible(policy: PolicySpec, robot: RobotSpec, source: str, tol: float = 1e-5) -> None:
    """Refuse to run a policy on a robot whose sizes or action bounds differ from the policy's."""
    if policy.obs_dim != robot.obs_dim:
        raise ValueError(f"{source}: policy expects {policy.obs_dim} observations, robot sends {robot.obs_dim}")
    if policy.act_dim != robot.act_dim:
        raise ValueError(f"{source}: policy outputs {policy.act_dim} actions, robot takes {robot.act_dim}")
    for name, ours, theirs in (("action_low", policy.action_low, robot.action_low),
                               ("action_high", policy.action_high, robot.action_high)):
        theirs = np.asarray(theirs, dtype=np.float32)
        if theirs.shape != ours.shape or not np.allclose(ours, theirs, rtol=tol, atol=tol):
            raise ValueError(f"{source}: policy {name} {ours.tolist()} differs from the robot's {theirs.tolist()}")
