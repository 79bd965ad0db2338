"""Wrappers that a run config switches on through `env.kwargs` (the registry applies them).

    discretize_actions: 5                       # k bins per action dimension -> Discrete(k^d)
    discretize_actions: [[-1.0], [0.0], [1.0]]  # or the joint actions themselves
    discretize_obs: {bins: [...], low: [...], high: [...]}   # grid cells -> Discrete, for tabular methods
    pixels: {size: 84, stack: 4, camera: track}               # stacked grayscale frames instead of states
    pixels: {size: 84, stack: 4, camera: track, skip: 2}      # ... each action held for 2 env steps
    pixels: {size: 84, stack: 4, camera: track, delay: 1}     # ... each frame seen one decision late
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import gymnasium as gym
from gymnasium.vector import AutoresetMode, SyncVectorEnv, VectorEnv

from envs.wrappers.discretize import (
    ActionBins,
    DiscretizeActions,
    DiscretizeObservations,
    DiscretizeVectorActions,
    DiscretizeVectorObservations,
    ObservationGrid,
)
from envs.wrappers.pixels import PixelObservation

OPTION_KEYS = ("discretize_actions", "discretize_obs", "pixels")
DISCRETIZE_KEYS = ("discretize_actions", "discretize_obs")
"""Options that a policy's export_actor() absorbs: an exported policy runs on the env without them."""

__all__ = ["DISCRETIZE_KEYS", "OPTION_KEYS", "ActionBins", "ObservationGrid", "PixelObservation", "decision_skip",
           "find_action_bins", "find_observation_grid", "find_pixels", "split_options", "wrap_single",
           "wrap_vector"]


def split_options(kwargs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(wrapper options, the env constructor's own kwargs)."""
    options = {k: v for k, v in kwargs.items() if k in OPTION_KEYS and v is not None}
    if "pixels" in options and "discretize_obs" in options:
        raise ValueError("env.kwargs: pixels and discretize_obs both replace the observation; choose one")
    if "pixels" in options and not isinstance(options["pixels"], dict | bool):
        raise ValueError(f"env.kwargs.pixels: expected a mapping (size, stack, camera) or true, "
                         f"got {options['pixels']!r}")
    if options.get("pixels") is False:
        del options["pixels"]  # `pixels: false` is off; `pixels: {}` is on with the defaults
    return options, {k: v for k, v in kwargs.items() if k not in OPTION_KEYS}


def _pixels(env: gym.Env, spec: dict[str, Any] | bool) -> gym.Env:
    spec = {} if spec is True else dict(spec)
    unknown = set(spec) - {"size", "stack", "camera", "skip", "delay"}
    if unknown:
        raise ValueError(f"env.kwargs.pixels.{sorted(unknown)[0]}: unknown key "
                         "(expected size, stack, camera, skip, delay)")
    return PixelObservation(env, **spec)


def wrap_single(env: gym.Env, options: dict[str, Any]) -> gym.Env:
    if "pixels" in options:
        env = _pixels(env, options["pixels"])
    if "discretize_actions" in options:
        env = DiscretizeActions(env, options["discretize_actions"])
    if "discretize_obs" in options:
        env = DiscretizeObservations(env, ObservationGrid.from_config(options["discretize_obs"]))
    return env


def wrap_vector(venv: VectorEnv, options: dict[str, Any]) -> VectorEnv:
    if "discretize_actions" in options:
        venv = DiscretizeVectorActions(venv, options["discretize_actions"])
    if "discretize_obs" in options:
        venv = DiscretizeVectorObservations(venv, ObservationGrid.from_config(options["discretize_obs"]))
    return venv


def pixel_vector_env(make_env: Callable[[], gym.Env], num_envs: int, spec: dict[str, Any] | bool) -> VectorEnv:
    """N single envs each rendering its own frames. Rendering, not physics, is the cost here, so the
    batched simulation buys nothing; SAME_STEP autoreset keeps the final frames for bootstrapping."""
    return SyncVectorEnv([lambda: _pixels(make_env(), spec) for _ in range(num_envs)],
                         autoreset_mode=AutoresetMode.SAME_STEP)


T = TypeVar("T")


def _find_in_wrappers(env: object, name: str, kind: type[T]) -> T | None:
    """The first attribute `name` of type `kind` down a chain of wrappers (each holding the next as `env`)."""
    while env is not None:
        found = vars(env).get(name)
        if isinstance(found, kind):
            return found
        env = vars(env).get("env")
    return None


def find_pixels(env: object) -> PixelObservation | None:
    """The pixel wrapper in a chain of wrappers (each holding the next as `env`), or None."""
    while env is not None and not isinstance(env, PixelObservation):
        env = vars(env).get("env")
    return env


def decision_skip(env: object) -> int:
    """Env steps per `step()` of a wrapped env: a pixel wrapper holds each action for its `skip` steps."""
    pixels = find_pixels(env)
    return 1 if pixels is None else pixels.skip


def find_action_bins(env: object) -> ActionBins | None:
    """The action discretization of a wrapped env (single or vector), or None."""
    return _find_in_wrappers(env, "bins", ActionBins)


def find_observation_grid(env: object) -> ObservationGrid | None:
    """The observation grid of a wrapped env (single or vector), or None."""
    return _find_in_wrappers(env, "grid", ObservationGrid)
