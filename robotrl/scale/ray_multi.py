"""MAPPO / IPPO on Ray: multi-robot rollout workers fill the agent's own MultiRollout.

Worker k steps envs k*n .. (k+1)*n - 1 of the run. MultiRollout's column e*m + j is robot j of env e,
so worker k's n*m columns are one contiguous block, and the learner concatenates the workers' slices
column-block by column-block into the storage the local MultiCollector fills: the agent's update
(GAE, value normalization, minibatches) runs unchanged on it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from robotrl.agents import algorithm
from robotrl.agents.mappo import MultiRollout
from robotrl.config import RunConfig
from robotrl.core.episodes import EpisodeStats
from robotrl.scale.multi_worker import ROLLOUT_FIELDS, MultiRolloutWorker
from robotrl.scale.worker_pool import PooledCollector, WorkerPool


class MultiSpecEnv:
    """What the MAPPO agent reads from its env when the simulations live in the workers: the sizes."""

    def __init__(self, cfg: RunConfig) -> None:
        make_env = algorithm(cfg.algo).make_env
        if make_env is None:
            raise ValueError(f"scale.backend ray: {cfg.algo} is not a multi-robot algorithm (it has no make_env)")
        probe = make_env(cfg, 1)
        try:
            self.agents = list(probe.agents)
            self.obs_dim, self.state_dim, self.act_dim = probe.obs_dim, probe.state_dim, probe.act_dim
            self.action_low, self.action_high = probe.action_low, probe.action_high
            self.max_episode_steps = probe.max_episode_steps
        finally:
            probe.close()
        self.num_envs = cfg.env.num_envs

    @property
    def num_agents(self) -> int:
        return len(self.agents)

    def close(self) -> None:
        """Nothing to release: the simulations belong to the workers."""


class RayMultiCollector(PooledCollector):
    """Drop-in for MultiCollector (reset, fill, last_value) whose envs are stepped by worker actors."""

    def __init__(self, cfg: RunConfig, policy: torch.nn.Module, device: torch.device) -> None:
        self.policy, self.device = policy, device
        self.pool = WorkerPool(MultiRolloutWorker, cfg)
        self.timings: dict[str, float] = {}
        self._last_value: torch.Tensor | None = None

    def _store(self, parts: list[dict[str, Any]], storage: MultiRollout, episodes: EpisodeStats) -> None:
        def cat(key: str) -> np.ndarray:
            return np.concatenate([p[key] for p in parts], axis=1)

        for name in ROLLOUT_FIELDS:
            getattr(storage, name).copy_(torch.as_tensor(cat(name)))
        rewards, dones, success = cat("step_rewards"), cat("step_dones"), cat("step_success")
        known = np.any([p["step_success_known"] for p in parts], axis=0)
        for t in range(storage.steps):
            episodes.add(rewards[t], dones[t], {"final_info": {"is_success": success[t]}} if known[t] else {})
        # V of the last observations was computed by the workers with the weights of this rollout,
        # the same ones the learner holds until its update: GAE's bootstrap needs no second pass.
        values = np.concatenate([p["last_value"] for p in parts])
        self._last_value = torch.as_tensor(values, dtype=torch.float32, device=self.device)

    def last_value(self) -> torch.Tensor:
        if self._last_value is None:
            raise RuntimeError("last_value() before the first fill()")
        return self._last_value
