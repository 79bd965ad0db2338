"""One description of a robot, shared by training, export and the robot: the ONNX metadata's env half.

robotrl tasks know their observation layout and action mode; for other Gymnasium ids the layout is
only a size, so the fields are named obs_0..obs_{n-1} and the action mode is taken to be torque.
With `pixels` in the kwargs the observation is the rendered frame stack instead: `obs_shape`
(stack, size, size), `obs_dtype` uint8, one field `frames`, and the rendering settings under `pixels`;
with a pixel `skip` the control rate is the decisions' (the env's rate / skip).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

from envs.registry import make
from envs.wrappers import find_pixels


def describe_env(env_id: str, **env_kwargs: Any) -> dict[str, Any]:
    """Observation layout, action bounds and mode, control rate and decimation of `env_id`."""
    env = make(env_id, **env_kwargs)
    try:
        base = env.unwrapped
        task = getattr(base, "task", None)
        if task is not None:
            info = task.describe()
        else:
            if not isinstance(env.action_space, spaces.Box):
                raise ValueError(f"{env_id}: its actions are {env.action_space}, not a box of robot commands: "
                                 "an exported policy drives a robot with continuous actions (a discrete policy "
                                 "exports through the discretize_actions option over such a robot)")
            obs_dim = int(np.prod(env.observation_space.shape))
            low = np.asarray(env.action_space.low, dtype=np.float64).reshape(-1)
            high = np.asarray(env.action_space.high, dtype=np.float64).reshape(-1)
            dt = float(getattr(base, "dt", 0.0))
            info = {
                "obs_fields": [[f"obs_{i}", 1] for i in range(obs_dim)],
                "obs_dim": obs_dim,
                "act_dim": int(low.shape[0]),
                "action_low": low.tolist(),
                "action_high": high.tolist(),
                "action_mode": "torque",
                "pd": None,
                "control_hz": 1.0 / dt if dt > 0 else 0.0,
                "decimation": int(getattr(base, "frame_skip", 1)),
            }
        info = {**info, **_observation(env, info["obs_dim"])}
        skip = (info["pixels"] or {}).get("skip", 1)
        if skip > 1:
            # Each decision is held for `skip` env steps: the policy runs at 1/skip of the env's rate, and
            # a loop at the env's rate would drive the robot that many times too fast.
            info["control_hz"] = info["control_hz"] / skip
            info["decimation"] = info["decimation"] * skip
    finally:
        env.close()
    return {"env_id": env_id, **info}


def _observation(env: Any, obs_dim: int) -> dict[str, Any]:
    """obs_shape, obs_dtype and pixels: a flat float32 vector, or the frame stack of a pixel wrapper."""
    pixels = find_pixels(env)
    if pixels is None:
        return {"obs_shape": [obs_dim], "obs_dtype": "float32", "pixels": None}
    shape = [int(n) for n in pixels.observation_space.shape]
    return {"obs_shape": shape, "obs_dtype": "uint8", "obs_dim": int(np.prod(shape)),
            "obs_fields": [["frames", int(np.prod(shape))]],
            "pixels": {"size": pixels.size, "stack": pixels.stack, "camera": pixels.camera, "skip": pixels.skip,
                       **({"delay": pixels.delay} if pixels.delay else {})}}  # a sim robot shows frames as late
