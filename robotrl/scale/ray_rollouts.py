"""Experience collection on Ray: K rollout-worker actors fill the agent's own rollout storage.

Each iteration the learner puts the policy weights in the object store once, every worker steps its
slice of the envs for T steps with them, and the learner stitches the (T, n_k) slices into the
(T, N) storage, scaling rewards and bootstrapping truncations exactly as the local collector does.
The agent (PPO, A2C, MAPPO) keeps calling collect/update and never learns where its data came from.
Seeding, weight broadcast and the replacement of lost workers live in worker_pool; the multi-robot
collector of MAPPO in ray_multi.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import ray
import torch
from gymnasium.vector.utils import batch_space

import envs
from policies.actor_critic import ActorCritic
from robotrl.agents import a2c, a3c, algorithm, mappo, ppo
from robotrl.agents.common import CollectorState
from robotrl.agents.protocol import Agent
from robotrl.config import RunConfig
from robotrl.core.episodes import EpisodeStats
from robotrl.core.returns import bootstrap_truncated
from robotrl.core.running_stats import RewardScaler
from robotrl.core.storage import RolloutStorage
from robotrl.scale.ray_multi import MultiSpecEnv, RayMultiCollector
from robotrl.scale.rollout_worker import RolloutWorker
from robotrl.scale.session import RaySession
from robotrl.scale.worker_pool import PooledCollector, WorkerPool


class SpecEnv:
    """What an agent reads from its env when the envs live in the workers: sizes and spaces."""

    def __init__(self, cfg: RunConfig) -> None:
        probe = envs.make_vec(cfg.env.id, 1, **cfg.env.kwargs)
        try:
            self.single_observation_space = probe.single_observation_space
            self.single_action_space = probe.single_action_space
        finally:
            probe.close()
        self.num_envs = cfg.env.num_envs
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)

    def close(self) -> None:
        """Nothing to release: the simulations belong to the workers."""


class RayRolloutCollector(PooledCollector, CollectorState):
    """Drop-in for OnPolicyCollector (reset, fill, last_value, after_update, state_dict) backed by actors."""

    policy: ActorCritic

    def __init__(self, cfg: RunConfig, policy: ActorCritic, gamma: float, scaler: RewardScaler | None,
                 device: torch.device) -> None:
        self.policy, self.gamma, self.scaler, self.device = policy, gamma, scaler, device
        self.pool = WorkerPool(RolloutWorker, cfg)
        self.per_worker = self.pool.per_worker
        self.last_obs: np.ndarray | None = None
        self.timings: dict[str, float] = {}

    def _store(self, parts: list[dict[str, Any]], storage: RolloutStorage, episodes: EpisodeStats) -> None:
        def cat(key: str) -> np.ndarray:
            return np.concatenate([p[key] for p in parts], axis=1)

        raw, term, trunc = cat("rewards"), cat("terminated"), cat("truncated")
        success, known = cat("success"), np.any([p["success_known"] for p in parts], axis=0)
        dones = term | trunc
        rewards = np.empty_like(raw)
        for t in range(storage.steps):
            infos = {"final_info": {"is_success": success[t]}} if known[t] else {}
            episodes.add(raw[t], dones[t], infos)
            rewards[t] = self.scaler(raw[t], dones[t]) if self.scaler is not None else raw[t]
        tensor = self._tensor
        rew = tensor(rewards)
        if trunc.any():
            # Each worker lists its final observations in its own (t, i) order, and the workers are
            # concatenated column-block by column-block: the list runs in (worker, t, i) order, while
            # the bootstrap takes them in the (t, i) order of the whole mask.
            t_idx, i_idx = np.nonzero(trunc)
            listed = np.lexsort((i_idx, t_idx, i_idx // self.per_worker))
            final = tensor(np.concatenate([p["final_obs"] for p in parts]))
            with torch.no_grad():
                final_values = self.policy.value(final)[torch.as_tensor(np.argsort(listed), device=self.device)]
            rew = bootstrap_truncated(rew, trunc, final_values, self.gamma)
        obs, actions = tensor(cat("obs")), torch.as_tensor(cat("actions"), device=self.device)
        log_probs, values, done_t = tensor(cat("log_probs")), tensor(cat("values")), tensor(dones)
        for t in range(storage.steps):
            storage.add(obs[t], actions[t], log_probs[t], values[t], rew[t], done_t[t])
        self.last_obs = np.concatenate([p["last_obs"] for p in parts])

    @torch.no_grad()
    def last_value(self) -> torch.Tensor:
        if self.last_obs is None:
            raise RuntimeError("RayRolloutCollector.last_value() before fill()")
        return self.policy.value(self._tensor(self.last_obs))


class RayRollouts:
    """The trainer's handle: Ray up, a spec env for building the agent, then `attach` swaps its collector."""

    def __init__(self, cfg: RunConfig) -> None:
        self.cfg = cfg
        self.session = RaySession(cfg.scale)
        self.collector: PooledCollector | None = None

    def __enter__(self) -> RayRollouts:
        self.session.__enter__()
        return self

    def spec_env(self) -> SpecEnv | MultiSpecEnv:
        """Sizes and spaces for building the agent; multi-robot algorithms get the batched multi-robot
        interface."""
        if algorithm(self.cfg.algo).multi_robot:
            return MultiSpecEnv(self.cfg)
        return SpecEnv(self.cfg)

    def attach(self, agent: Agent) -> None:
        """Before `agent.start`: replace the seam through which the agent gets experience
        (agents.protocol) by Ray workers. An on-policy agent's `collector` becomes one that gathers
        from rollout workers, keeping its gamma and reward scaler (the same object, so the checkpoint holds
        it as before); A3C's `workers` become gradient-worker actors and a parameter holder."""
        if isinstance(agent, a3c.Agent):
            from robotrl.scale.ray_a3c import GradientActors

            agent.workers = GradientActors(self.cfg, agent)
        elif isinstance(agent, mappo.Agent):
            multi = RayMultiCollector(self.cfg, agent.policy, agent.device)
            self.collector = agent.collector = multi
        elif isinstance(agent, ppo.Agent | a2c.Agent):
            local = agent.collector
            single = RayRolloutCollector(self.cfg, agent.policy, local.gamma, local.scaler, agent.device)
            self.collector = agent.collector = single
        else:
            raise ValueError(f"scale.backend ray: algo {self.cfg.algo!r} has no collector or workers to replace; "
                             "Ray rollout workers serve the agents that collect rollouts (ppo, a2c, mappo), "
                             "and a3c's gradient workers")

    def __exit__(self, *exc: object) -> None:
        try:
            if self.collector is not None and ray.is_initialized():
                self.collector.close()
        finally:
            self.session.__exit__(*exc)
