"""Golden trajectories of the reaching envs: what a refactor of their code must reproduce exactly.

Each case runs one env (batched vector env or single Gymnasium env) from fixed seeds under fixed
random actions and keeps every observation, reward, termination, truncation and info array, the spaces
and the task's `describe()`. `tests/data/reach_golden.npz` holds the cases as recorded from the code
before Reacher-v0 became a configuration of Reach-v0 (issue 20); test_golden_trajectories.py replays them.

Re-record (only when a change of behaviour is intended, and say so in the commit):
    MUJOCO_GL=egl .venv/bin/python tests/golden.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
from golden_io import record_cases

import envs

FIXTURE = Path(__file__).resolve().parent / "data" / "reach_golden.npz"

ARM_REACH_PPO = {"robot": "arm7", "action_mode": "position", "action_scale": 1.0}
"""launch/arm_reach_ppo.yaml's env.kwargs."""

CASES: dict[str, dict[str, Any]] = {
    # 3 envs x 260 steps: every env's first episode and its autoreset into the second.
    "reacher_vec": {"id": "robotrl/Reacher-v0", "kwargs": {}, "num_envs": 3, "seed": 0, "steps": 260},
    "reacher_single": {"id": "robotrl/Reacher-v0", "kwargs": {}, "num_envs": 0, "seed": 11, "steps": 210},
    # launch/reacher_dqn.yaml's wrapper: each joint torque binned to {-1, 0, 1}.
    "reacher_dqn_vec": {"id": "robotrl/Reacher-v0", "kwargs": {"discretize_actions": 3}, "num_envs": 3,
                        "seed": 4, "steps": 120},
    # A Jacobian-transpose PD controller with noise: steps within and outside the 2 cm success radius.
    "reacher_pd_vec": {"id": "robotrl/Reacher-v0", "kwargs": {}, "num_envs": 3, "seed": 9, "steps": 210,
                       "policy": "reacher_pd"},
    "reacher_control_cost_vec": {"id": "robotrl/Reacher-v0", "kwargs": {"control_cost": 0.5}, "num_envs": 2,
                                 "seed": 8, "steps": 60},
    "arm7_reach_ppo_vec": {"id": "robotrl/Reach-v0", "kwargs": ARM_REACH_PPO, "num_envs": 2, "seed": 1,
                           "steps": 210},
    "arm7_reach_single": {"id": "robotrl/Reach-v0", "kwargs": ARM_REACH_PPO, "num_envs": 0, "seed": 3,
                          "steps": 60},
    "tiny_arm_vec": {"id": "robotrl/Reach-v0", "kwargs": {"robot": "tiny_arm"}, "num_envs": 3, "seed": 2,
                     "steps": 210},
    "tiny_arm_torque_vec": {"id": "robotrl/Reach-v0", "kwargs": {"robot": "tiny_arm", "action_mode": "torque"},
                            "num_envs": 2, "seed": 5, "steps": 80},
    "tiny_arm_orientation_vec": {"id": "robotrl/Reach-v0", "kwargs": {"robot": "tiny_arm", "orientation": True},
                                 "num_envs": 2, "seed": 6, "steps": 80},
}


def _space(space: Any) -> dict[str, Any]:
    if hasattr(space, "n"):
        return {"kind": "discrete", "n": int(space.n)}
    if hasattr(space, "nvec"):
        return {"kind": "multi_discrete", "nvec": [int(v) for v in space.nvec]}
    return {"kind": "box", "shape": list(space.shape), "dtype": str(space.dtype),
            "low": np.asarray(space.low, dtype=np.float64).ravel().tolist(),
            "high": np.asarray(space.high, dtype=np.float64).ravel().tolist()}


def _actions(space: Any, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    if hasattr(space, "n"):
        return rng.integers(0, int(space.n), size=shape)
    if hasattr(space, "nvec"):
        return rng.integers(0, np.asarray(space.nvec), size=(*shape, len(space.nvec)))
    return rng.uniform(-1.0, 1.0, size=(*shape, *space.shape)).astype(np.float32)


def reacher_pd(obs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Torques that pull Reacher's fingertip (links 0.1 m and 0.11 m) to its target, plus noise."""
    c1, c2, s1, s2, w1, w2, dx, dy = obs.T
    q1 = np.arctan2(s1, c1)
    q12 = q1 + np.arctan2(s2, c2)
    j11, j12 = -0.1 * np.sin(q1) - 0.11 * np.sin(q12), -0.11 * np.sin(q12)
    j21, j22 = 0.1 * np.cos(q1) + 0.11 * np.cos(q12), 0.11 * np.cos(q12)
    torque = -100.0 * np.stack([j11 * dx + j21 * dy, j12 * dx + j22 * dy], axis=1) - 0.1 * np.stack([w1, w2], axis=1)
    return np.clip(torque + rng.normal(0.0, 0.2, size=torque.shape), -1.0, 1.0).astype(np.float32)


def rollout(case: dict[str, Any]) -> dict[str, np.ndarray]:
    """The case's trajectory as named arrays (what the fixture stores for it)."""
    rng = np.random.default_rng(1000 + case["seed"])
    obs_list, rewards, terms, truncs, dists, succ, finals = [], [], [], [], [], [], []
    if case["num_envs"]:
        env = envs.make_vec(case["id"], case["num_envs"], **case["kwargs"])
        task = env.unwrapped.task
        spaces = {"observation": _space(env.single_observation_space), "action": _space(env.single_action_space)}
        obs, _ = env.reset(seed=case["seed"])
        obs_list.append(obs)
        for _ in range(case["steps"]):
            if case.get("policy") == "reacher_pd":
                action = reacher_pd(obs, rng)
            else:
                action = _actions(env.single_action_space, (case["num_envs"],), rng)
            obs, reward, term, trunc, info = env.step(action)
            obs_list.append(obs)
            rewards.append(reward)
            terms.append(term)
            truncs.append(trunc)
            dists.append(info["distance"])
            succ.append(info["is_success"])
            final = np.zeros_like(obs)
            for i in np.flatnonzero(info.get("_final_obs", np.zeros(len(obs), bool))):
                final[i] = info["final_obs"][i]
            finals.append(final)
    else:
        env = envs.make(case["id"], **case["kwargs"])
        task = env.unwrapped.task
        spaces = {"observation": _space(env.observation_space), "action": _space(env.action_space)}
        obs, _ = env.reset(seed=case["seed"])
        obs_list.append(obs[None])
        for _ in range(case["steps"]):
            obs, reward, term, trunc, info = env.step(_actions(env.action_space, (), rng))
            rewards.append([reward])
            terms.append([term])
            truncs.append([trunc])
            dists.append([info["distance"]])
            succ.append([info["is_success"]])
            finals.append(obs[None])
            if term or trunc:
                obs, _ = env.reset()
            obs_list.append(obs[None])
    env.close()
    meta = {"spaces": spaces, "describe": task.describe()}
    return {"obs": np.asarray(obs_list), "reward": np.asarray(rewards, dtype=np.float64),
            "terminated": np.asarray(terms, dtype=bool), "truncated": np.asarray(truncs, dtype=bool),
            "distance": np.asarray(dists, dtype=np.float64), "is_success": np.asarray(succ, dtype=bool),
            "final_obs": np.asarray(finals), "meta": np.array(json.dumps(meta, sort_keys=True))}


def record(path: Path = FIXTURE) -> None:
    """Write every case's trajectory to `path`."""
    record_cases(CASES, rollout, path)


if __name__ == "__main__":
    record(Path(sys.argv[1]) if len(sys.argv) > 1 else FIXTURE)
