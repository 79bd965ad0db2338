"""A multi-robot rollout worker: its own batched multi-robot env and a copy of the MAPPO policy, stepped by
MAPPO's own MultiCollector into a MultiRollout of its envs' columns. Plain Python (no Ray) so it can be
tested and timed alone; Ray wraps it as an actor.

Running the agent's collector here, rather than a second copy of its loop, keeps the team reward, the
truncation bootstrap from V(final state) and the critic input (global state or own observation) in one
place. MAPPO scales no rewards, so nothing in a transition needs statistics only the learner has.
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np
import torch

import envs
from robotrl.agents.mappo import MultiCollector, MultiRollout, make_policy
from robotrl.config import from_dict
from robotrl.core.episodes import final_success
from robotrl.core.threads import limit_threads
from robotrl.core.vec_env import MultiVecEnv
from robotrl.scale.rollout_worker import worker_env_kwargs

ROLLOUT_FIELDS = ("obs", "critic_in", "agent", "actions", "log_probs", "values", "rewards", "dones")
"""The MultiRollout tensors a worker fills and the learner concatenates column-block by column-block."""


class StepLog:
    """Stands in for EpisodeStats in the worker: keeps what each step reported, so the learner's one
    EpisodeStats replays every worker's steps in order, as if it had stepped all envs itself."""

    def __init__(self, steps: int, num_envs: int) -> None:
        self.rewards = np.zeros((steps, num_envs))
        self.dones = np.zeros((steps, num_envs), bool)
        self.success = np.zeros((steps, num_envs), bool)
        self.success_known = np.zeros(steps, bool)
        self.t = 0

    def add(self, rewards: np.ndarray, done: np.ndarray, infos: dict[str, Any]) -> None:
        self.rewards[self.t], self.dones[self.t] = rewards, done
        success = final_success(infos, done)
        if success is not None:
            self.success[self.t], self.success_known[self.t] = success, True
        self.t += 1

    def arrays(self) -> dict[str, np.ndarray]:
        return {"step_rewards": self.rewards, "step_dones": self.dones, "step_success": self.success,
                "step_success_known": self.success_known}


class TimedEnv:
    """The worker's env with the seconds spent in step() counted: the physics share of a rollout."""

    def __init__(self, env: MultiVecEnv) -> None:
        self.env = env
        self.step_s = 0.0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.env, name)

    def step(self, actions: np.ndarray):
        t0 = time.perf_counter()
        out = self.env.step(actions)
        self.step_s += time.perf_counter() - t0
        return out


class MultiRolloutWorker:
    def __init__(self, config: dict[str, Any], index: int, num_envs: int, cpus: float = 1.0) -> None:
        limit_threads(1)
        cfg = from_dict(config, f"rollout worker {index}", name=config.get("name"))
        self.index, self.num_envs = index, num_envs
        self.env = TimedEnv(envs.make_multi_batch(cfg.env.id, num_envs, **worker_env_kwargs(cfg, cpus)))
        self.policy = make_policy(cfg, self.env)
        self.policy.eval()
        self.collector = MultiCollector(self.env, self.policy, cfg.hyper, torch.device("cpu"))
        self.storage: MultiRollout | None = None

    def pid(self) -> int:
        return os.getpid()

    def reset(self, env_seed: int | None, torch_seed: int | None) -> None:
        """Env i of this worker is seeded env_seed + i (the learner passes seed + index * num_envs)."""
        if torch_seed is not None:
            torch.manual_seed(torch_seed)
        self.collector.reset(seed=env_seed)

    def rollout(self, weights: dict[str, torch.Tensor], steps: int) -> dict[str, Any]:
        """`steps` steps of every env under `weights`: the (T, n * m, ...) MultiRollout fields, V of the
        last observations (for GAE), what each step reported for the episode statistics, and timings."""
        t_load = time.perf_counter()
        self.policy.load_state_dict(weights)
        load_s = time.perf_counter() - t_load
        if self.storage is None or self.storage.steps != steps:
            self.storage = MultiRollout(steps, self.num_envs * self.env.num_agents, self.env.obs_dim,
                                        self.policy.critic_dim, self.env.act_dim, torch.device("cpu"))
        log = StepLog(steps, self.num_envs)
        self.env.step_s = 0.0
        t0 = time.perf_counter()
        self.collector.fill(self.storage, log)
        fill_s = time.perf_counter() - t0
        out: dict[str, Any] = {name: getattr(self.storage, name).numpy() for name in ROLLOUT_FIELDS}
        out["last_value"] = self.collector.last_value().numpy()
        out.update(log.arrays())
        out["time"] = {"load_s": load_s, "act_s": fill_s - self.env.step_s, "env_s": self.env.step_s}
        return out
