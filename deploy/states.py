"""The runner's safety state machine, shaped like the ones robot vendors ship with their deploy examples.

    passive --(passive_s after the first fresh observation)--> ramp --(ramp_s)--> policy
       ^                                                                              |
       |  fresh observations again             any state: watchdog (no valid          v
       +---------------------------- safe <--- observation for --watchdog-ms), stop, exit
    any state --(the robot restarted: a new session)--> passive

What each state sends follows the policy's action mode (ONNX metadata `action_mode`):

| state   | torque policy                          | position policy (action = offset from the default pose) |
|---------|----------------------------------------|----------------------------------------------------------|
| passive | zero torque                            | the measured pose (nothing before the first observation) |
| ramp    | the policy's torque scaled 0 -> 1      | measured pose at ramp start -> default pose, linearly     |
| policy  | the policy                             | the policy                                                |
| safe    | zero torque                            | the last target, held                                     |

`--safe-action zero|hold` overrides the safe state's command (and the one answering a single bad tick).
A position policy's target is `default_pose + action_scale * action` (metadata `pd.default_pose`,
`pd.action_scale`, 1 when absent); holding the measured pose needs the joint positions in the
observation, as a field named `joint_offset` (from the default pose) or `joint_pos` (absolute).
There is no damping state: the UDP protocol carries commands, not gains, so "damping" would be a
guess at the robot's PD; the robot's own PD stays active under position targets.

Single bad ticks (one NaN observation or action, one failed read) get the safe command for that
tick and leave the state alone; only the watchdog moves the machine to `safe` (no command computed from a
valid observation for --watchdog-ms: silence and a stream of bad ticks alike), whose way back is the
whole start sequence, because the robot may have moved while the runner was blind.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from deploy.metadata import PolicySpec

PASSIVE, RAMP, POLICY, SAFE = 0, 1, 2, 3
STATE_NAMES = ("passive", "ramp", "policy", "safe")
POSITION_MODES = ("position", "pd")
JOINT_FIELDS = {"joint_offset": True, "joint_pos": False, "joint_position": False, "joint_positions": False}
"""Observation fields that carry joint positions: name -> whether they are offsets from the default pose."""
MAX_LOGGED = 1000

log = logging.getLogger("deploy.states")


@dataclass
class StartConfig:
    passive_s: float = 0.5
    """Send the passive command for this long after the first fresh observation (0: go on at once)."""
    ramp_s: float = 2.0
    """Move to the default pose (torque: fade the policy in) over this long (0: no ramp)."""

    def __post_init__(self) -> None:
        for flag, value in (("--passive-s", self.passive_s), ("--ramp-s", self.ramp_s)):
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{flag} {value}: expected a finite number of seconds >= 0")


class ActionMode:
    """The passive and ramp commands of a policy's action mode, in the policy's action units."""

    def __init__(self, spec: PolicySpec, source: str) -> None:
        self.torque = spec.action_mode not in POSITION_MODES
        self.act_dim = spec.act_dim
        if self.torque:
            return
        pd = spec.pd or {}
        robot = getattr(spec, "robot", None) or {}
        self.default_pose = np.asarray(pd.get("default_pose", robot.get("default_pose", ())), dtype=np.float32)
        scale = pd.get("action_scale", (robot.get("action") or {}).get("scale", 1.0))
        self.scale = np.broadcast_to(np.asarray(scale, dtype=np.float32), (spec.act_dim,)).copy() \
            if np.size(scale) in (1, spec.act_dim) else np.zeros(0, np.float32)
        if self.default_pose.shape != (spec.act_dim,) or self.scale.shape != (spec.act_dim,) \
                or not (self.scale > 0).all():
            raise ValueError(f"{source}: metadata pd.default_pose {self.default_pose.tolist()} and pd.action_scale "
                             f"{scale}: expected {spec.act_dim} values and positive scales")
        start, self.joints, self.offsets, field = 0, None, True, ""
        for name, size in spec.obs_fields:
            if name in JOINT_FIELDS and size == spec.act_dim:
                self.joints, self.offsets, field = slice(start, start + size), JOINT_FIELDS[name], name
                break
            start += size
        if self.joints is None:
            raise ValueError(f"{source}: a position policy needs the joint positions in its observation (a field "
                             f"named joint_offset or joint_pos of {spec.act_dim} values) to hold the measured pose; "
                             f"fields are {[name for name, _ in spec.obs_fields]}")
        # The observation may carry the joint field scaled (metadata obs_units: value = scale x quantity).
        units = {u[0]: float(u[2]) for u in (getattr(spec, "obs_units", None) or ())}
        self.obs_scale = np.float32(units.get(field, 1.0) or 1.0)
        self._pose = np.zeros(spec.act_dim, dtype=np.float32)

    def measured(self, obs: np.ndarray) -> np.ndarray:
        """The action that targets the measured pose (position policies)."""
        np.divide(obs[self.joints], self.obs_scale, out=self._pose)
        if not self.offsets:
            self._pose -= self.default_pose
        self._pose /= self.scale
        return self._pose


class StateMachine:
    """The current state, its clock, and the transitions so far (logged, counted, kept for the summary)."""

    def __init__(self, config: StartConfig, name: str | None = None) -> None:
        self.config = config
        self._prefix = f"{name}: " if name else ""
        """The robot's name before each logged transition (a team deploy runs one machine per robot)."""
        self.state = PASSIVE
        self.since_ns: int | None = None
        """When the current state's clock started (passive: the first fresh observation in it)."""
        self._passive_ns = round(config.passive_s * 1e9)
        self._ramp_ns = round(config.ramp_s * 1e9)
        self.counts: dict[str, int] = {}
        self.transitions: list[dict[str, Any]] = []
        self.ticks = [0] * len(STATE_NAMES)

    def to(self, state: int, tick: int, reason: str) -> None:
        key = f"{STATE_NAMES[self.state]}->{STATE_NAMES[state]}"
        self.counts[key] = self.counts.get(key, 0) + 1
        if len(self.transitions) < MAX_LOGGED:
            self.transitions.append({"tick": tick, "from": STATE_NAMES[self.state], "to": STATE_NAMES[state],
                                     "reason": reason})
        log.info("%stick %d: %s (%s)", self._prefix, tick, key, reason)
        self.state, self.since_ns = state, None

    def warn(self, tick: int, message: str) -> None:
        """A line to stderr beside the transitions (with the robot's name in a team deploy)."""
        log.warning("%stick %d: %s", self._prefix, tick, message)

    def wait_in_passive(self, tick: int) -> None:
        """Stay passive with its clock stopped: the passive time starts again at the next fresh observation
        from which the runner may move on (a position robot whose pose no command can hold)."""
        if self.state == SAFE:
            self.to(PASSIVE, tick, "fresh observations again")
        self.since_ns = None

    def advance(self, tick: int, now_ns: int) -> float:
        """Move on with a fresh observation at `now_ns`; returns the ramp's progress (0..1) in ramp."""
        if self.state == SAFE:
            self.to(PASSIVE, tick, "fresh observations again")
        if self.state == PASSIVE:
            if self.since_ns is None:
                self.since_ns = now_ns
            if now_ns - self.since_ns >= self._passive_ns:
                self.to(RAMP, tick, f"passive for {self.config.passive_s:g} s")
        if self.state == RAMP:
            if self.since_ns is None:
                self.since_ns = now_ns
            if now_ns - self.since_ns >= self._ramp_ns:
                self.to(POLICY, tick, f"ramp of {self.config.ramp_s:g} s done")
            else:
                return (now_ns - self.since_ns) / self._ramp_ns
        return 1.0

    def summary(self) -> dict[str, Any]:
        return {"final": STATE_NAMES[self.state], "transitions": dict(self.counts),
                "ticks": dict(zip(STATE_NAMES, self.ticks, strict=True)), "log": list(self.transitions)}
