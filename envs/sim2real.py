"""Sim-to-real options shared by every robot: rates, domain randomization, noise, delay, initial states.

They are constructor keyword arguments of the envs (so a run config sets them in `env.kwargs`), all
off by default. Per-episode draws come from the per-simulation rngs in a fixed order, so simulation
i of a batch and a single env seeded like it see the same robot: same seed, same randomization.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import mujoco
import numpy as np

from envs.sim import BatchSim

Range = tuple[float, float]
INTEGRATORS = {"Euler": int(mujoco.mjtIntegrator.mjINT_EULER), "RK4": int(mujoco.mjtIntegrator.mjINT_RK4),
               "implicit": int(mujoco.mjtIntegrator.mjINT_IMPLICIT),
               "implicitfast": int(mujoco.mjtIntegrator.mjINT_IMPLICITFAST)}

# Model field scaled by each randomization option; scales are drawn per element (body, geom, ...).
_RANDOMIZED_FIELDS = {
    "mass_scale": ("body_mass",),
    "friction_scale": ("geom_friction",),
    "actuator_gain_scale": ("actuator_gainprm", "actuator_biasprm"),
    "damping_scale": ("dof_damping",),
}


def _as_range(name: str, value: Any) -> Range | None:
    if value is None:
        return None
    if (not isinstance(value, list | tuple) or len(value) != 2
            or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)):
        raise ValueError(f"sim-to-real option {name}: expected [low, high] numbers, got {value!r}")
    low, high = float(value[0]), float(value[1])
    if not 0 < low <= high:
        raise ValueError(f"sim-to-real option {name}: expected 0 < low <= high, got {value!r}")
    return low, high


def _bounds(delay: Any) -> tuple[Any, ...]:
    """(low, high) of a delay given as k or (low, high)."""
    return delay if isinstance(delay, tuple) else (delay, delay)


def _delay(name: str, value: Any) -> int | tuple[int, int]:
    """A delay in policy steps: k >= 0, or [low, high] to draw per episode."""
    given = value
    if isinstance(value, list):
        value = tuple(value)
    bounds = _bounds(value)
    if (len(bounds) != 2 or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in bounds)
            or bounds[0] > bounds[1]):
        raise ValueError(f"sim-to-real option {name}: expected k >= 0 or [low, high] (integers), got {given!r}")
    return value


@dataclass(frozen=True)
class SimToReal:
    """What differs between the nominal simulation and the robot a policy must survive."""

    timestep: float | None = None
    """Physics step in seconds (None: the model's)."""
    frame_skip: int | None = None
    """Physics steps per policy step, the decimation (None: the task's); control rate = 1 / (timestep * it)."""
    mass_scale: Range | None = None
    """Per episode, each body's mass (and inertia) times a uniform draw in [low, high]."""
    friction_scale: Range | None = None
    """Per episode, each geom's sliding friction times a uniform draw."""
    actuator_gain_scale: Range | None = None
    """Per episode, each actuator's gain (and position/velocity feedback gains) times a uniform draw."""
    damping_scale: Range | None = None
    """Per episode, each joint's damping times a uniform draw."""
    obs_noise: float = 0.0
    """Std of Gaussian noise added to every observation entry."""
    action_delay: int | tuple[int, int] = 0
    """Policy steps between choosing an action and applying it: k, or [low, high] drawn per episode."""
    init_noise: float = 0.0
    """Uniform +-init_noise added to the initial joint positions (hinges, slides) and all velocities."""
    integrator: str | None = None
    """Physics integrator (Euler, RK4, implicit, implicitfast; None: the model's)."""
    obs_delay: int | tuple[int, int] = 0
    """Policy steps between measuring an observation and the policy seeing it (sensor and bus latency):
    k, or [low, high] drawn per episode; an episode starts with its first observation repeated."""

    @classmethod
    def pop_from(cls, kwargs: dict[str, Any]) -> SimToReal:
        """Take this class's options out of an env's keyword arguments, validated."""
        values = {f.name: kwargs.pop(f.name) for f in dataclasses.fields(cls) if f.name in kwargs}
        for name in _RANDOMIZED_FIELDS:
            values[name] = _as_range(name, values.get(name))
        if values.get("timestep") is not None and not values["timestep"] > 0:
            raise ValueError(f"sim-to-real option timestep: expected > 0, got {values['timestep']!r}")
        skip = values.get("frame_skip")
        if skip is not None and (not isinstance(skip, int) or skip < 1):
            raise ValueError(f"sim-to-real option frame_skip: expected an integer >= 1, got {skip!r}")
        for name in ("action_delay", "obs_delay"):
            values[name] = _delay(name, values.get(name, 0))
        integrator = values.get("integrator")
        if integrator is not None and integrator not in INTEGRATORS:
            raise ValueError(f"sim-to-real option integrator: expected one of {list(INTEGRATORS)}, got {integrator!r}")
        for name in ("obs_noise", "init_noise"):
            if name in values and not (isinstance(values[name], int | float) and values[name] >= 0):
                raise ValueError(f"sim-to-real option {name}: expected a number >= 0, got {values[name]!r}")
        return cls(**values)

    @property
    def delay_range(self) -> tuple[int, int]:
        return _bounds(self.action_delay)

    @property
    def obs_delay_range(self) -> tuple[int, int]:
        return _bounds(self.obs_delay)

    def edit_model(self, model: mujoco.MjModel) -> None:
        """Changes made once, before the simulations are built."""
        if self.timestep is not None:
            model.opt.timestep = self.timestep
        if self.integrator is not None:
            model.opt.integrator = INTEGRATORS[self.integrator]


class Perturbations:
    """The per-episode and per-step side of `SimToReal` for a batch of simulations."""

    def __init__(self, options: SimToReal, sim: BatchSim, act_dim: int, obs_dim: int) -> None:
        self.options = options
        self.sim = sim
        self.obs_dim = obs_dim
        self.nominal: dict[str, np.ndarray] = {}
        self.fields: dict[str, np.ndarray] = {}
        for option, names in _RANDOMIZED_FIELDS.items():
            if getattr(options, option) is not None:
                for name in names:
                    self.nominal[name] = getattr(sim.model, name).copy()
                    self.fields[name] = sim.batch.expand(name)
        if options.mass_scale is not None:
            self.nominal["body_inertia"] = sim.model.body_inertia.copy()
            self.fields["body_inertia"] = sim.batch.expand("body_inertia")
        # Scales drawn at the last reset, (n, elements) per option: kept for tests and logging.
        self.scales: dict[str, np.ndarray] = {}
        low, high = options.delay_range
        self.delay = np.full(sim.nsim, low, dtype=np.int64)
        self.queue = np.zeros((high + 1, sim.nsim, act_dim))
        model = sim.model
        slide_hinge = np.isin(model.jnt_type, (mujoco.mjtJoint.mjJNT_HINGE, mujoco.mjtJoint.mjJNT_SLIDE))
        self.noisy_qpos = model.jnt_qposadr[slide_hinge]
        o = options
        obs_low, obs_high = o.obs_delay_range
        self.obs_lag = np.full(sim.nsim, obs_low, dtype=np.int64)
        self.obs_queue = np.zeros((obs_high + 1, sim.nsim, obs_dim), dtype=np.float32)
        self.fresh = np.ones(sim.nsim, dtype=bool)
        """Simulations whose next observation starts an episode (it fills their delay queue)."""
        # Off by default: then resets skip the per-simulation loop entirely.
        self.active = (bool(self.fields) or o.obs_noise > 0 or o.delay_range[1] > 0 or o.init_noise > 0
                       or obs_high > 0)

    def reset_ids(self, ids: np.ndarray, rngs: list[np.random.Generator]) -> None:
        """Draw this episode's robot for simulations `ids`, after the task wrote its initial state."""
        if not self.active:
            return
        o = self.options
        for option in _RANDOMIZED_FIELDS:
            rng_range = getattr(o, option)
            if rng_range is None:
                continue
            size = self._elements(option)
            scales = self.scales.setdefault(option, np.ones((self.sim.nsim, size)))
            for i in ids:
                scales[i] = rngs[i].uniform(*rng_range, size=size)
            self._write(option, ids, scales)
        if o.mass_scale is not None:
            self.sim.batch.set_const(ids)
        low, high = o.delay_range
        obs_low, obs_high = o.obs_delay_range
        for i in ids:
            if high > low:
                self.delay[i] = rngs[i].integers(low, high + 1)
            if o.init_noise > 0:
                self.sim.qpos[i, self.noisy_qpos] += rngs[i].uniform(-o.init_noise, o.init_noise,
                                                                      size=len(self.noisy_qpos))
                self.sim.qvel[i] += rngs[i].uniform(-o.init_noise, o.init_noise, size=self.sim.qvel.shape[1])
            if obs_high > obs_low:
                self.obs_lag[i] = rngs[i].integers(obs_low, obs_high + 1)
        self.queue[:, ids] = 0.0
        self.fresh[ids] = True

    def _elements(self, option: str) -> int:
        return len(self.nominal[_RANDOMIZED_FIELDS[option][0]])

    def _write(self, option: str, ids: np.ndarray, scales: np.ndarray) -> None:
        s = scales[ids]
        if option == "mass_scale":
            self.fields["body_mass"][ids] = self.nominal["body_mass"] * s
            self.fields["body_inertia"][ids] = self.nominal["body_inertia"] * s[..., None]
        elif option == "friction_scale":
            f = np.broadcast_to(self.nominal["geom_friction"], (len(ids), *self.nominal["geom_friction"].shape)).copy()
            f[..., 0] *= s
            self.fields["geom_friction"][ids] = f
        elif option == "actuator_gain_scale":
            gain = np.broadcast_to(self.nominal["actuator_gainprm"],
                                   (len(ids), *self.nominal["actuator_gainprm"].shape)).copy()
            bias = np.broadcast_to(self.nominal["actuator_biasprm"],
                                   (len(ids), *self.nominal["actuator_biasprm"].shape)).copy()
            gain[..., 0] *= s
            bias[..., 1:3] *= s[..., None]  # position and velocity feedback scale with the gain
            self.fields["actuator_gainprm"][ids] = gain
            self.fields["actuator_biasprm"][ids] = bias
        else:
            self.fields["dof_damping"][ids] = self.nominal["dof_damping"] * s

    def delayed(self, action: np.ndarray) -> np.ndarray:
        """The action each simulation applies now: the one chosen `delay` policy steps ago."""
        if self.queue.shape[0] == 1:
            return action
        self.queue = np.roll(self.queue, 1, axis=0)
        self.queue[0] = action
        return self.queue[self.delay, np.arange(self.sim.nsim)]

    def noisy(self, obs: np.ndarray, ids: np.ndarray, rngs: list[np.random.Generator]) -> np.ndarray:
        """Observations of simulations `ids` with sensor noise added."""
        std = self.options.obs_noise
        if std > 0:
            for i in ids:
                obs[i] += rngs[i].normal(0.0, std, size=self.obs_dim).astype(np.float32)
        return self._delayed_obs(obs, ids) if self.obs_queue.shape[0] > 1 else obs

    def _delayed_obs(self, obs: np.ndarray, ids: np.ndarray) -> np.ndarray:
        """Observations of `ids` as measured their episode's `obs_delay` policy steps ago (an episode's
        first one repeated until there are older ones)."""
        ids = np.asarray(ids)
        fresh = ids[self.fresh[ids]]
        self.obs_queue[:, fresh] = obs[fresh]
        going = ids[~self.fresh[ids]]
        self.obs_queue[:, going] = np.roll(self.obs_queue[:, going], 1, axis=0)
        self.obs_queue[0, going] = obs[going]
        self.fresh[ids] = False
        out = obs.copy()
        out[ids] = self.obs_queue[self.obs_lag[ids], ids]
        return out
