"""A rollout worker: its own batched vector env and a copy of the policy; steps T steps and returns the
raw transitions. Plain Python (no Ray) so it can be tested and timed alone; Ray wraps it as an actor.

Reward scaling and truncation bootstrapping stay with the learner, so that one set of running
statistics sees every env, as with local envs, and is saved in one checkpoint.
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np
import torch

import envs
from robotrl.agents import algorithm
from robotrl.config import RunConfig, from_dict
from robotrl.core.episodes import final_success
from robotrl.core.returns import time_limit_cut
from robotrl.core.threads import limit_threads


def worker_torch_seed(seed: int, index: int) -> int:
    """Distinct, reproducible action-noise seeds per (run seed, worker index)."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


def worker_env_kwargs(cfg: RunConfig, cpus: float) -> dict[str, Any]:
    """The config's env kwargs, with as many physics threads as the CPUs Ray reserved for this actor: by
    default a MuJoCo batch takes every core of the node, and K workers' thread pools then fight over them."""
    kwargs = dict(cfg.env.kwargs)
    if envs.is_robotrl(cfg.env.id):
        kwargs.setdefault("nthread", max(1, int(cpus)))
    return kwargs


class RolloutWorker:
    def __init__(self, config: dict[str, Any], index: int, num_envs: int, cpus: float = 1.0) -> None:
        limit_threads(1)
        cfg = from_dict(config, f"rollout worker {index}", name=config.get("name"))
        self.index, self.num_envs = index, num_envs
        self.env = envs.make_vec(cfg.env.id, num_envs, **worker_env_kwargs(cfg, cpus))
        self.policy = algorithm(cfg.algo).make_policy(cfg, self.env)
        self.policy.eval()
        self.obs: np.ndarray | None = None

    def pid(self) -> int:
        return os.getpid()

    def reset(self, env_seed: int | None, torch_seed: int | None) -> None:
        """Env i of this worker is seeded env_seed + i; the learner passes seed + index * num_envs, so the
        K workers' envs get the same seeds as one local vector env of K * num_envs."""
        if torch_seed is not None:
            torch.manual_seed(torch_seed)
        self.obs, _ = self.env.reset(seed=env_seed)

    def rollout(self, weights: dict[str, torch.Tensor], steps: int) -> dict[str, Any]:
        """`steps` steps of every env under `weights`: (T, n, ...) arrays plus where the time went."""
        t_load = time.perf_counter()
        self.policy.load_state_dict(weights)
        load_s = time.perf_counter() - t_load
        if self.obs is None:
            self.reset(None, None)
        n, obs_dim = self.num_envs, self.obs.shape[-1]
        act_shape = self.env.single_action_space.shape
        out = {
            "obs": np.empty((steps, n, obs_dim), np.float32),
            "actions": np.empty((steps, n, *act_shape), np.float32 if self.policy.continuous else np.int64),
            "log_probs": np.empty((steps, n), np.float32),
            "values": np.empty((steps, n), np.float32),
            "rewards": np.empty((steps, n), np.float64),
            "terminated": np.empty((steps, n), bool),
            "truncated": np.empty((steps, n), bool),
            "success": np.zeros((steps, n), bool),
            "success_known": np.zeros(steps, bool),
        }
        final_obs: list[np.ndarray] = []
        act_s = env_s = 0.0
        t0 = time.perf_counter()
        for t in range(steps):
            obs = torch.as_tensor(self.obs, dtype=torch.float32)
            action, log_prob, value = self.policy.act(obs)
            env_action = self.policy.to_env(action).numpy()
            t1 = time.perf_counter()
            self.obs, reward, terminated, truncated, infos = self.env.step(env_action)
            t2 = time.perf_counter()
            act_s, env_s = act_s + (t1 - t0), env_s + (t2 - t1)
            out["obs"][t], out["actions"][t] = obs.numpy(), action.numpy()
            out["log_probs"][t], out["values"][t] = log_prob.numpy(), value.numpy()
            # "truncated" goes out as the time limit's cut alone: a step that also terminated is not bootstrapped.
            cut = time_limit_cut(terminated, truncated)
            out["rewards"][t], out["terminated"][t], out["truncated"][t] = reward, terminated, cut
            done = terminated | truncated
            success = final_success(infos, done) if done.any() else None
            if success is not None:
                out["success"][t], out["success_known"][t] = success, True
            final_obs.extend(infos["final_obs"][i] for i in np.flatnonzero(cut))
            t0 = time.perf_counter()
        out["final_obs"] = np.asarray(final_obs, np.float32).reshape(-1, obs_dim)
        out["last_obs"] = np.asarray(self.obs, np.float32)
        out["time"] = {"load_s": load_s, "act_s": act_s, "env_s": env_s}
        return out
