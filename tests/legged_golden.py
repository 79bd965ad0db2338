"""Golden trajectories of the legged envs: what moving Quadruped-v0 onto Locomotion-v0 must reproduce.

Each case runs one env (a batched vector env, or the single Gymnasium env that resets itself after each
episode) from a fixed seed under fixed uniform random actions in [-1, 1], and keeps every observation,
reward, termination and truncation, the per-step infos (velocity error, forward velocity, power), the
Locomotion task's unweighted reward terms, the spaces and the task's `describe()` (the ONNX metadata's
env half). `tests/data/legged_golden.npz` holds the cases as recorded from the code before Quadruped-v0
became a configuration of Locomotion-v0 (issue 20); test_legged_golden.py replays them. One change since,
intended: go12_flat_ppo_single's `reward` and `term/foot_placement` were re-recorded (those two arrays only)
when the single env began to skip MuJoCo's derived pass as the vector env does, so that its foot_placement
term reads the foot positions training reads.

Re-record (only when a change of behaviour is intended, and say so in the commit):
    MUJOCO_GL=egl .venv/bin/python tests/legged_golden.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
from golden_io import record_cases

import envs

FIXTURE = Path(__file__).resolve().parent / "data" / "legged_golden.npz"

LEGGED_FLAT_PPO = {"robot": "go12", "action_mode": "position", "action_scale": 0.5, "push_velocity": 0.5,
                   "push_interval": [5.0, 10.0], "gait": {"period": 0.5, "offsets": [0.0, 0.5, 0.5, 0.0]},
                   "weights": {"gait_contact": 1.0, "foot_placement": -10.0}}
"""launch/legged_flat_ppo.yaml's env.kwargs (the trained go12 policies' env)."""
QUADRUPED_PPO = {"action_mode": "pd", "command_vx": [0.0, 1.0], "command_vy": [0.0, 0.0], "command_yaw": [0.0, 0.0]}
"""launch/quadruped_ppo.yaml's env.kwargs."""

QUADRUPED = "robotrl/Quadruped-v0"
LOCOMOTION = "robotrl/Locomotion-v0"
CASES: dict[str, dict[str, Any]] = {
    # Random torques topple the quadruped within a second; random PD targets do not, so the PD cases end
    # their episodes early (max_episode_steps) to cross autoresets too.
    "quadruped_pd_vec": {"id": QUADRUPED, "kwargs": {"max_episode_steps": 60}, "num_envs": 2, "seed": 0,
                         "steps": 150},
    "quadruped_pd_single": {"id": QUADRUPED, "kwargs": {"max_episode_steps": 70}, "num_envs": 0, "seed": 1,
                            "steps": 150},
    "quadruped_torque_vec": {"id": QUADRUPED, "kwargs": {"action_mode": "torque"}, "num_envs": 2, "seed": 2,
                             "steps": 150},
    "quadruped_torque_single": {"id": QUADRUPED, "kwargs": {"action_mode": "torque"}, "num_envs": 0, "seed": 3,
                                "steps": 150},
    "quadruped_ppo_vec": {"id": QUADRUPED, "kwargs": {**QUADRUPED_PPO, "max_episode_steps": 50}, "num_envs": 2,
                          "seed": 4, "steps": 150},
    # Every Quadruped-v0 kwarg away from its default, and a sim-to-real randomization of the PD gains.
    "quadruped_options_vec": {"id": QUADRUPED, "num_envs": 2, "seed": 5, "steps": 100, "kwargs": {
        "max_episode_steps": 40, "action_scale": 0.3, "command_vx": 0.4, "command_vy": [-0.1, 0.1], "command_yaw": 0.2,
        "tracking_sigma": 0.5, "actuator_gain_scale": [0.8, 1.2],
        "weights": {"linear": 2.0, "yaw": 0.1, "upright": 1.0, "energy": 1e-3, "smooth": 0.05, "alive": 0.0}}},
    # 300 steps: past the first command redraw (every 5 s).
    "go12_flat_ppo_vec": {"id": LOCOMOTION, "kwargs": LEGGED_FLAT_PPO, "num_envs": 2, "seed": 6, "steps": 300},
    # Pushes every 0.2-0.5 s, the rough terrain with its curriculum (launch/legged_rough_ppo.yaml's).
    "go12_rough_pushes_vec": {"id": LOCOMOTION, "num_envs": 2, "seed": 10, "steps": 150, "kwargs": {
        **LEGGED_FLAT_PPO, "push_interval": [0.2, 0.5], "terrain": {
            "type": "rough", "roughness": 0.05, "size": 16.0, "resolution": 0.1, "seed": 0, "curriculum": True,
            "levels": 10}}},
    "go12_flat_ppo_single": {"id": LOCOMOTION, "kwargs": LEGGED_FLAT_PPO, "num_envs": 0, "seed": 7, "steps": 150},
    "tiny_quad_vec": {"id": LOCOMOTION, "kwargs": {"robot": "tiny_quad"}, "num_envs": 2, "seed": 8, "steps": 150},
    "tiny_quad_torque_single": {"id": LOCOMOTION, "kwargs": {"robot": "tiny_quad", "action_mode": "torque"},
                                "num_envs": 0, "seed": 9, "steps": 150},
}
INFO_KEYS = ("velocity_error", "_velocity_error", "forward_velocity", "power")
"""Per-step infos kept (those a task reports; `_velocity_error` is Locomotion's mask)."""


def _space(space: Any) -> dict[str, Any]:
    return {"shape": list(space.shape), "dtype": str(space.dtype),
            "low": np.asarray(space.low, dtype=np.float64).ravel().tolist(),
            "high": np.asarray(space.high, dtype=np.float64).ravel().tolist()}


def rollout(case: dict[str, Any]) -> dict[str, np.ndarray]:
    """The case's trajectory as named arrays (what the fixture stores for it): rows are steps, columns envs."""
    rng = np.random.default_rng(2000 + case["seed"])
    n = case["num_envs"]
    rows: dict[str, list[Any]] = {"obs": [], "reward": [], "terminated": [], "truncated": []}
    if n:
        env = envs.make_vec(case["id"], n, **case["kwargs"])
        spaces = {"observation": _space(env.single_observation_space), "action": _space(env.single_action_space)}
        act_shape = (n, *env.single_action_space.shape)
    else:
        env = envs.make(case["id"], **case["kwargs"])
        spaces = {"observation": _space(env.observation_space), "action": _space(env.action_space)}
        act_shape = env.action_space.shape
    task = env.unwrapped.task
    obs, _ = env.reset(seed=case["seed"])
    rows["obs"].append(np.reshape(obs, (max(n, 1), -1)))
    for _ in range(case["steps"]):
        obs, reward, term, trunc, info = env.step(rng.uniform(-1.0, 1.0, size=act_shape).astype(np.float32))
        final = np.reshape(obs, (max(n, 1), -1)).copy()
        if n:
            final[~info.get("_final_obs", np.zeros(n, bool))] = 0.0
            for i in np.flatnonzero(info.get("_final_obs", np.zeros(n, bool))):
                final[i] = info["final_obs"][i]
        elif term or trunc:
            obs, _ = env.reset()
        rows.setdefault("final_obs", []).append(final)
        for key, value in (("obs", obs), ("reward", reward), ("terminated", term), ("truncated", trunc)):
            rows[key].append(np.reshape(value, (max(n, 1), -1)) if key == "obs" else np.reshape(value, -1))
        for key in INFO_KEYS:
            if key in info:
                rows.setdefault(f"info/{key}", []).append(np.reshape(info[key], -1))
        for key, value in getattr(task, "terms", {}).items():
            rows.setdefault(f"term/{key}", []).append(np.array(value, dtype=np.float64))
    env.close()
    meta = {"spaces": spaces, "describe": task.describe()}
    out = {key: np.asarray(value) for key, value in rows.items()}
    out["meta"] = np.array(json.dumps(meta, sort_keys=True))
    return out


def record(path: Path = FIXTURE) -> None:
    """Write every case's trajectory to `path`."""
    record_cases(CASES, rollout, path)


if __name__ == "__main__":
    record(Path(sys.argv[1]) if len(sys.argv) > 1 else FIXTURE)
