"""K rollout-worker actors, each owning one slice of env.num_envs: seeded, called together, replaced when lost.

The single-robot (PPO, A2C) and multi-robot (MAPPO) Ray collectors share this pool and the learner-side
`PooledCollector`, so both seed, broadcast, time out and recover from a lost worker the same way. A
worker class has `pid()`, `reset(env_seed, torch_seed)` and `rollout(weights, steps) -> dict` with a
"time" entry ({load_s, act_s, env_s}).

A worker that dies or hangs (no answer within scale.timeout_s) is killed and replaced, with fresh
episodes in its envs, up to scale.max_worker_restarts times per run; then the run stops with
WorkerLostError, and the last checkpoint on disk is the one the trainer wrote before (atomically).
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from typing import Any

import numpy as np
import ray
import torch
from ray.exceptions import ActorUnavailableError, GetTimeoutError, RayActorError, RayTaskError, WorkerCrashedError

from robotrl.config import RunConfig
from robotrl.core.episodes import EpisodeStats
from robotrl.core.running_stats import RewardScaler
from robotrl.scale.rollout_worker import worker_torch_seed

_LOST = (RayActorError, ActorUnavailableError, WorkerCrashedError)


class WorkerLostError(RuntimeError):
    """A rollout worker died or hung more often than scale.max_worker_restarts allows."""


def count_restart(restarts: int, limit: int, who: str, reason: str) -> int:
    """`restarts` + 1 when the run may replace one more lost worker (scale.max_worker_restarts = `limit`
    per run, whatever the workers do); past it, WorkerLostError stops the run, whose last checkpoint
    the trainer wrote whole before."""
    if restarts >= limit:
        raise WorkerLostError(f"{who} lost ({reason}) after {restarts} replacement(s) "
                              f"(scale.max_worker_restarts={limit}); run stopped, "
                              "the last checkpoint is intact: continue with --resume")
    return restarts + 1


class WorkerPool:
    """scale.workers actors of `worker_cls`, worker k stepping envs k*n .. (k+1)*n - 1 of the run."""

    def __init__(self, worker_cls: type, cfg: RunConfig) -> None:
        scale = cfg.scale
        if cfg.env.num_envs % scale.workers:
            raise ValueError(f"env.num_envs {cfg.env.num_envs} must be a multiple of scale.workers {scale.workers}")
        self.cfg = cfg
        self.per_worker = cfg.env.num_envs // scale.workers
        self.actor_cls = ray.remote(worker_cls).options(num_cpus=scale.worker_cpus, max_restarts=0)
        self.workers = [self._spawn(k) for k in range(scale.workers)]
        self.restarts = 0
        self.seed: int | None = None
        # Workers replaced during the last reset or rollout: their envs started new episodes.
        self.lost: list[int] = []
        self._weights_ref, self._steps = None, 0
        self._wait([w.pid.remote() for w in self.workers], "start")

    def _spawn(self, k: int):
        return self.actor_cls.remote(self.cfg.to_dict(), k, self.per_worker, self.cfg.scale.worker_cpus)

    def _reset_ref(self, k: int, seed: int | None):
        env_seed = None if seed is None else seed + k * self.per_worker
        torch_seed = None if seed is None else worker_torch_seed(seed, k)
        return self.workers[k].reset.remote(env_seed, torch_seed)

    def reset(self, seed: int | None) -> None:
        """Worker k's envs get seeds seed + k*n + i: the seeds one local vector env of all of them gets."""
        self.seed, self.lost = seed, []
        self._wait([self._reset_ref(k, seed) for k in range(len(self.workers))], "reset")

    def rollout(self, weights_ref, steps: int) -> list[dict[str, Any]]:
        """Every worker's `steps` steps under the weights in the object store, in worker order."""
        self._weights_ref, self._steps, self.lost = weights_ref, steps, []
        return self._wait([w.rollout.remote(weights_ref, steps) for w in self.workers], "rollout")

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
        self.restarts = count_restart(self.restarts, self.cfg.scale.max_worker_restarts, f"rollout worker {k}", reason)
        ray.kill(self.workers[k], no_restart=True)
        self.workers[k] = self._spawn(k)
        # The replacement starts new episodes; the seed moves on with each restart so they are new ones.
        seed = None if self.seed is None else self.seed + 1_000_003 * self.restarts
        self.lost.append(k)
        if what == "start":
            return self.workers[k].pid.remote()
        reset = self._reset_ref(k, seed)
        if what == "reset":
            return reset
        return self.workers[k].rollout.remote(self._weights_ref, self._steps)

    def close(self) -> None:
        for w in self.workers:
            ray.kill(w, no_restart=True)
        self.workers = []


class PooledCollector(ABC):
    """The learner's side of a Ray collector: broadcast the weights once, gather every worker's slice,
    let `_store` put them into the agent's own storage, and time each part."""

    pool: WorkerPool
    policy: torch.nn.Module
    device: torch.device
    scaler: RewardScaler | None = None
    ready: bool = False
    timings: dict[str, float]

    def reset(self, seed: int | None = None) -> None:
        self.pool.reset(seed)
        if self.scaler is not None:
            self.scaler.new_episodes()  # as OnPolicyCollector.reset: no return runs on into new episodes
        self.ready = True

    def fill(self, storage: Any, episodes: EpisodeStats) -> None:
        if not self.ready:
            self.reset()
        t0 = time.perf_counter()
        weights_ref = ray.put({k: v.detach().cpu() for k, v in self.policy.state_dict().items()})
        t1 = time.perf_counter()
        parts = self.pool.rollout(weights_ref, storage.steps)
        t2 = time.perf_counter()
        for k in self.pool.lost:
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
            "scale/worker_restarts": float(self.pool.restarts),
        }

    def _forget_episodes(self, k: int, episodes: EpisodeStats) -> None:
        """The replaced worker's episodes in flight are gone: drop their partial returns."""
        n = self.pool.per_worker
        cols = slice(k * n, (k + 1) * n)
        episodes.returns[cols], episodes.lengths[cols] = 0.0, 0
        if self.scaler is not None:
            self.scaler.ret[cols] = 0.0

    @abstractmethod
    def _store(self, parts: list[dict[str, Any]], storage: Any, episodes: EpisodeStats) -> None:
        """Put the workers' slices, in worker order, into the agent's storage and episode statistics."""

    def close(self) -> None:
        self.pool.close()
