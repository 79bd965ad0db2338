"""Experience collection on Ray: K rollout-worker actors fill the agent's own RolloutStorage.

Each iteration the learner puts the policy weights in the object store once, every worker steps its
slice of the envs for T steps with them, and the learner stitches the (T, n_k) slices into the
(T, N) storage, scaling rewards and bootstrapping truncations exactly as the local collector does.
The agent (PPO, A2C, ...) keeps calling collect/update and never learns where its data came from.

A worker that dies or hangs (no answer within scale.timeout_s) is killed and replaced, with fresh
episodes in its envs, up to scale.max_worker_restarts times per run; then the run stops with
WorkerLostError, and the last checkpoint on disk is the one the trainer wrote before (atomically).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import ray
import torch
from gymnasium.vector.utils import batch_space
from ray.exceptions import ActorUnavailableError, GetTimeoutError, RayActorError, RayTaskError, WorkerCrashedError

import envs
from robotrl.agents.common import CollectorState, OnPolicyCollector
from robotrl.config import RunConfig
from robotrl.episodes import EpisodeStats
from robotrl.scale.rollout_worker import RolloutWorker, worker_torch_seed
from robotrl.scale.session import RaySession
from robotrl.storage import RolloutStorage

_LOST = (RayActorError, ActorUnavailableError, WorkerCrashedError)


class WorkerLostError(RuntimeError):
    """A rollout worker died or hung more often than scale.max_worker_restarts allows."""


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


class RayRolloutCollector(CollectorState):
    """Drop-in for OnPolicyCollector (reset, fill, last_value, after_update, state_dict) backed by actors."""

    def __init__(self, cfg: RunConfig, policy: torch.nn.Module, gamma: float, scaler, device: torch.device) -> None:
        scale = cfg.scale
        if cfg.env.num_envs % scale.workers:
            raise ValueError(f"env.num_envs {cfg.env.num_envs} must be a multiple of scale.workers {scale.workers}")
        self.cfg, self.policy, self.gamma, self.scaler, self.device = cfg, policy, gamma, scaler, device
        self.per_worker = cfg.env.num_envs // scale.workers
        self.actor_cls = ray.remote(RolloutWorker).options(num_cpus=scale.worker_cpus, max_restarts=0)
        self.workers = [self._spawn(k) for k in range(scale.workers)]
        self.restarts = 0
        self.seed: int | None = None
        self.ready = False
        self.last_obs: np.ndarray | None = None
        self.timings: dict[str, float] = {}
        self._lost_columns: list[int] = []
        self._weights_ref, self._steps = None, 0
        self._wait([w.pid.remote() for w in self.workers], "start")

    def _spawn(self, k: int):
        return self.actor_cls.remote(self.cfg.to_dict(), k, self.per_worker, self.cfg.scale.worker_cpus)

    def _reset_ref(self, k: int, seed: int | None):
        env_seed = None if seed is None else seed + k * self.per_worker
        torch_seed = None if seed is None else worker_torch_seed(seed, k)
        return self.workers[k].reset.remote(env_seed, torch_seed)

    def _wait(self, refs: list, what: str) -> list[Any]:
        """Results of one call per worker, in worker order; dead or hung workers are replaced and retried.

        A call may take scale.timeout_s, plus scale.start_timeout_s when its worker is new (start-up
        imports torch and builds the envs, seconds on a busy machine)."""
        scale = self.cfg.scale
        results: list[Any] = [None] * len(refs)
        now = time.monotonic()
        first = scale.timeout_s + (scale.start_timeout_s if what == "start" else 0.0)
        pending = {ref: (k, now + first) for k, ref in enumerate(refs)}
        while pending:
            nearest = min(deadline for _, deadline in pending.values())
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=max(nearest - time.monotonic(), 0.0))
            if not ready:
                late = [ref for ref, (_, deadline) in pending.items() if deadline <= time.monotonic()]
                for ref in late:
                    k, _ = pending.pop(ref)
                    pending[self._replace(k, f"no answer to {what} in time", what)] = self._restarted(k)
                continue
            ref = ready[0]
            k, _ = pending.pop(ref)
            try:
                results[k] = ray.get(ref, timeout=scale.timeout_s)
            except (*_LOST, GetTimeoutError) as exc:
                pending[self._replace(k, type(exc).__name__, what)] = self._restarted(k)
            except RayTaskError as exc:
                cause = exc.cause if getattr(exc, "cause", None) is not None else exc
                raise RuntimeError(f"rollout worker {k} failed in {what}: {type(cause).__name__}: {cause}") from exc
        return results

    def _restarted(self, k: int) -> tuple[int, float]:
        return k, time.monotonic() + self.cfg.scale.start_timeout_s + self.cfg.scale.timeout_s

    def _replace(self, k: int, reason: str, what: str):
        """Kill worker k, start another in its place, and re-issue `what` on it; returns the new call."""
        if self.restarts >= self.cfg.scale.max_worker_restarts:
            raise WorkerLostError(f"rollout worker {k} lost ({reason}) after {self.restarts} replacement(s) "
                                  f"(scale.max_worker_restarts={self.cfg.scale.max_worker_restarts}); run stopped, "
                                  "the last checkpoint is intact: continue with --resume")
        self.restarts += 1
        ray.kill(self.workers[k], no_restart=True)
        self.workers[k] = self._spawn(k)
        # The replacement starts new episodes; the seed moves on with each restart so they are new ones.
        seed = None if self.seed is None else self.seed + 1_000_003 * self.restarts
        self._lost_columns.append(k)
        if what == "start":
            return self.workers[k].pid.remote()
        reset = self._reset_ref(k, seed)
        if what == "reset":
            return reset
        return self.workers[k].rollout.remote(self._weights_ref, self._steps)

    def reset(self, seed: int | None = None) -> None:
        self.seed, self._lost_columns = seed, []
        self._wait([self._reset_ref(k, seed) for k in range(len(self.workers))], "reset")
        self.ready = True

    def fill(self, storage: RolloutStorage, episodes: EpisodeStats) -> None:
        if not self.ready:
            self.reset()
        t0 = time.perf_counter()
        self._weights_ref = ray.put({k: v.detach().cpu() for k, v in self.policy.state_dict().items()})
        self._steps, self._lost_columns = storage.steps, []
        t1 = time.perf_counter()
        parts = self._wait([w.rollout.remote(self._weights_ref, storage.steps) for w in self.workers], "rollout")
        t2 = time.perf_counter()
        for k in self._lost_columns:
            self._forget_episodes(k, episodes)
        self._store(parts, storage, episodes)
        t3 = time.perf_counter()
        self.timings = {
            "time/broadcast_s": t1 - t0,
            "time/rollout_wait_s": t2 - t1,
            "time/assemble_s": t3 - t2,
            "time/worker_load_s": float(np.mean([p["time"]["load_s"] for p in parts])),
            "time/worker_act_s": float(np.mean([p["time"]["act_s"] for p in parts])),
            "time/worker_env_s": float(np.mean([p["time"]["env_s"] for p in parts])),
            "scale/worker_restarts": float(self.restarts),
        }

    def _forget_episodes(self, k: int, episodes: EpisodeStats) -> None:
        """The replaced worker's episodes in flight are gone: drop their partial returns."""
        cols = slice(k * self.per_worker, (k + 1) * self.per_worker)
        episodes.returns[cols], episodes.lengths[cols] = 0.0, 0
        if self.scaler is not None:
            self.scaler.ret[cols] = 0.0

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
            # Row-major nonzero matches the order each worker listed its final observations in, and
            # workers are concatenated column-block by column-block: sort by (worker, t, i) to match.
            t_idx, i_idx = np.nonzero(trunc)
            order = np.lexsort((i_idx, t_idx, i_idx // self.per_worker))
            final = tensor(np.concatenate([p["final_obs"] for p in parts]))
            with torch.no_grad():
                rew[t_idx[order], i_idx[order]] += self.gamma * self.policy.value(final)
        obs, actions = tensor(cat("obs")), torch.as_tensor(cat("actions"), device=self.device)
        log_probs, values, done_t = tensor(cat("log_probs")), tensor(cat("values")), tensor(dones)
        for t in range(storage.steps):
            storage.add(obs[t], actions[t], log_probs[t], values[t], rew[t], done_t[t])
        self.last_obs = np.concatenate([p["last_obs"] for p in parts])

    @torch.no_grad()
    def last_value(self) -> torch.Tensor:
        return self.policy.value(self._tensor(self.last_obs))

    def close(self) -> None:
        for w in self.workers:
            ray.kill(w, no_restart=True)
        self.workers = []


class RayRollouts:
    """The trainer's handle: Ray up, a SpecEnv for building the agent, then `attach` swaps its collector."""

    def __init__(self, cfg: RunConfig) -> None:
        self.cfg = cfg
        self.session = RaySession(cfg.scale)
        self.collector: RayRolloutCollector | None = None

    def __enter__(self) -> RayRollouts:
        self.session.__enter__()
        return self

    def spec_env(self) -> SpecEnv:
        return SpecEnv(self.cfg)

    def attach(self, agent) -> None:
        """Replace the agent's local collector by one that gathers from the workers, keeping its gamma and
        reward scaler (the same object, so the checkpoint holds it as before). A3C's worker pool is
        replaced by gradient-worker actors and a parameter holder instead."""
        if self.cfg.algo == "a3c":
            from robotrl.scale.ray_a3c import RayA3CPool

            agent.collector = RayA3CPool(self.cfg, agent)
            return
        local = agent.collector
        if not isinstance(local, OnPolicyCollector):
            raise ValueError(f"scale.backend ray: algo {self.cfg.algo!r} collects with {type(local).__name__}; "
                             "Ray rollout workers serve the agents that use OnPolicyCollector (ppo, a2c) and a3c")
        self.collector = RayRolloutCollector(self.cfg, agent.policy, local.gamma, local.scaler, local.device)
        agent.collector = self.collector

    def __exit__(self, *exc: object) -> None:
        try:
            if self.collector is not None and ray.is_initialized():
                self.collector.close()
        finally:
            self.session.__exit__(*exc)
