"""The contract between a robot task and the envs that run it.

A task owns the math of one robot problem for a batch of simulations as numpy arrays. The
single-robot Gymnasium env runs a batch of one, the vector env a batch of N: there is one
implementation of every observation, reward and termination.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

import mujoco
import numpy as np

from envs.sim import BatchSim, load_model


@dataclass(slots=True)
class StepResult:
    """What a task reports after the physics advanced: arrays over the batch."""

    reward: np.ndarray
    terminated: np.ndarray
    success: np.ndarray | None = None
    extras: dict[str, np.ndarray] = field(default_factory=dict)


class Task(ABC):
    """One robot problem over a batch of `sim.nsim` simulations.

    Subclasses set the class attributes and implement `reset_ids`, `apply_action`, `observe` and
    `evaluate`. Per-simulation randomness comes from `rngs[i]`, so simulation i of a batch sees the
    same draws as a single env seeded like it.
    """

    xml: str
    """MJCF file in envs/assets/."""
    frame_skip: int
    """Physics steps per policy step."""
    max_episode_steps: int
    obs_fields: tuple[tuple[str, int], ...]
    """Names and sizes of the observation's parts, in order (the layout the ONNX file records)."""
    action_mode: str = "torque"
    """"torque", or "position": PD targets around `default_pose` with gains `pd_kp`, `pd_kd`."""
    pd_kp: tuple[float, ...] = ()
    pd_kd: tuple[float, ...] = ()
    default_pose: tuple[float, ...] = ()
    obs_units: dict[str, tuple[str, float]] = {}
    """Per observation field: its units and the scale it is multiplied by (the ONNX metadata's
    `obs_units`, so a robot's driver builds observations without reading the task's code)."""
    uses_derived_state: bool = True
    """Whether `observe()` and `evaluate()` read MuJoCo's derived quantities (body and site positions,
    sensors) rather than only qpos/qvel. A task that reads only the state sets False: the vector env
    then skips the forward pass after each step and each autoreset (the next step's physics recomputes
    everything from the state anyway; rendering recomputes what it draws)."""

    def __init__(self, sim: BatchSim) -> None:
        self.sim = sim
        self.n = sim.nsim
        low, high = sim.model.actuator_ctrlrange.T
        self.action_low = low.astype(np.float32)
        self.action_high = high.astype(np.float32)

    @classmethod
    def build_model(cls, **task_kwargs: Any) -> mujoco.MjModel:
        """The model the simulations run: the task's MJCF file; a task over robot descriptions builds it
        from the `robot` its kwargs name."""
        return load_model(cls.xml)

    @classmethod
    def edit_model(cls, model: mujoco.MjModel, **task_kwargs: Any) -> None:
        """Change the model before the simulations are built (an action mode, say); none by default."""
        return None

    @property
    def obs_dim(self) -> int:
        return sum(size for _, size in self.obs_fields)

    @property
    def control_dt(self) -> float:
        return float(self.sim.model.opt.timestep) * self.frame_skip

    def set_frame_skip(self, frame_skip: int) -> None:
        """Run `frame_skip` physics steps per policy step (the sim-to-real option): a task that turned
        seconds into policy steps when it was built turns them again (see LocomotionTask)."""
        self.frame_skip = frame_skip

    def describe(self) -> dict[str, Any]:
        """The robot facts an exported policy must agree with, as plain data (see envs.describe)."""
        return {
            "obs_fields": [[name, size] for name, size in self.obs_fields],
            "obs_dim": self.obs_dim,
            "act_dim": int(self.action_low.shape[0]),
            "action_low": [float(v) for v in self.action_low],
            "action_high": [float(v) for v in self.action_high],
            "action_mode": self.action_mode,
            "pd": ({"kp": list(self.pd_kp), "kd": list(self.pd_kd), "default_pose": list(self.default_pose)}
                   if self.action_mode == "position" else None),
            "control_hz": 1.0 / self.control_dt,
            "decimation": self.frame_skip,
            "obs_units": ([[name, *self.obs_units[name]] for name, _ in self.obs_fields]
                          if self.obs_units else None),
        }

    def carried_state(self) -> dict[str, np.ndarray]:
        """What the task carries from one episode to the next (a terrain curriculum's levels): the part of
        its state a training checkpoint keeps, so a resumed run goes on where it stopped. Per-episode
        variables are not in it: a resumed run starts new episodes. Empty for most tasks."""
        return {}

    def restore_carried_state(self, state: dict[str, np.ndarray]) -> None:
        """Take back what `carried_state` gave, before the first reset of a resumed run."""
        mine = self.carried_state()
        if set(state) != set(mine):
            raise ValueError(f"{type(self).__name__}: the checkpoint's task state has keys {sorted(state)}, "
                             f"this task carries {sorted(mine)} (was the env changed since the checkpoint?)")
        for key, value in state.items():
            if np.shape(value) != mine[key].shape:
                raise ValueError(f"{type(self).__name__}: the checkpoint's task state {key!r} has shape "
                                 f"{np.shape(value)}, expected {mine[key].shape}")
        self._restore(state)

    def _restore(self, state: dict[str, np.ndarray]) -> None:
        """Write a checked `carried_state` back (a task that carries any overrides it)."""
        if state:
            raise NotImplementedError(f"{type(self).__name__} carries {sorted(state)} but cannot restore it")

    @abstractmethod
    def reset_ids(self, ids: np.ndarray, rngs: list[np.random.Generator]) -> None:
        """Write initial states (and per-episode task variables) for simulations `ids`."""

    @abstractmethod
    def apply_action(self, action: np.ndarray) -> None:
        """Write the (n, act_dim) action into the simulations' inputs."""

    def advance(self, derived: bool = True) -> None:
        """Run the physics of one policy step (`frame_skip` physics steps); `derived` as in BatchSim.step.
        A task that computes its controller at the physics rate (PD from a robot description) overrides it."""
        self.sim.step(self.frame_skip, derived=derived)

    @abstractmethod
    def observe(self) -> np.ndarray:
        """(n, obs_dim) float32 observations of the current states."""

    def observe_ids(self, ids: np.ndarray) -> np.ndarray:
        """(len(ids), obs_dim) observations of simulations `ids` (after an autoreset); a task can
        compute only those rows."""
        return self.observe()[ids]

    @abstractmethod
    def evaluate(self, action: np.ndarray) -> StepResult:
        """Reward and termination of the step that `action` just drove. Every returned array is new
        (never a view of the simulation state): the vector env hands them out as the final info of
        envs it then resets."""
