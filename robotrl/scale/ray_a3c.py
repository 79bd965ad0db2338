"""A3C on Ray: gradient workers as actors on any node, and one parameter-holder actor that applies each
worker's gradients the moment they arrive, without waiting for the others.

A worker loops: compute the clipped A2C gradient of one rollout with the weights it holds, send it to
the holder, and take back the weights the holder has after applying it. The holder is a single
actor, so updates are applied one at a time in arrival order (A3C's asynchrony, without Hogwild's
races). `GradientActors` is the agent's `workers` (agents.protocol.GradientWorkers) in a Ray run, in place
of its local processes; the trainer's loop is unchanged: `run(steps)` keeps every worker busy until the step budget
of one iteration is used, then the holder's weights and optimizer state are copied into the agent,
so checkpoints and evaluations see one consistent state. A dead or hung worker is replaced (up to
scale.max_worker_restarts); a lost holder stops the run with the last checkpoint intact.
"""

from __future__ import annotations

import time
from typing import Any, cast

import ray
import torch
from ray.exceptions import ActorUnavailableError, GetTimeoutError, RayActorError, RayTaskError, WorkerCrashedError

import envs
from robotrl.agents import a2c, a3c
from robotrl.config import RunConfig, from_dict
from robotrl.core.episodes import EpisodeStats
from robotrl.core.threads import limit_threads
from robotrl.scale.worker_pool import WorkerLostError, count_restart

_LOST = (RayActorError, ActorUnavailableError, WorkerCrashedError, GetTimeoutError)


def _config(config: dict[str, Any], who: str) -> RunConfig:
    return from_dict(config, who, name=config.get("name"))


class ParameterHolder:
    """The global network and its optimizer; applies gradients as they come."""

    def __init__(self, config: dict[str, Any], state: dict[str, Any]) -> None:
        limit_threads(1)
        cfg = _config(config, "A3C parameter holder")
        probe = envs.make_vec(cfg.env.id, 1, **cfg.env.kwargs)
        try:
            self.policy = a3c.make_policy(cfg, probe)
        finally:
            probe.close()
        self.params = list(self.policy.parameters())
        self.optimizer = a2c.make_optimizer(self.params, cfg.hyper)
        self.policy.load_state_dict(state["policy"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.lr = cfg.hyper.learning_rate
        self.updates = 0

    def weights(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().clone() for k, v in self.policy.state_dict().items()}

    def apply(self, grads: list[torch.Tensor], obs: torch.Tensor) -> dict[str, torch.Tensor]:
        """One optimizer step with a worker's gradients; the weights after it go back to that worker."""
        a3c.apply_gradients(self.params, self.optimizer, grads, self.lr)
        self.policy.normalizer.update(obs)
        self.updates += 1
        return self.weights()

    def set_lr(self, lr: float) -> None:
        self.lr = lr

    def state(self) -> dict[str, Any]:
        return {"policy": self.weights(), "optimizer": self.optimizer.state_dict(), "updates": self.updates}


class GradientActor:
    """a3c.GradientWorker behind an actor: its own envs and network, talking to the holder directly."""

    def __init__(self, config: dict[str, Any], seed: int, holder, collector: dict[str, Any] | None = None) -> None:
        limit_threads(1)
        torch.manual_seed(seed)
        self.worker = a3c.GradientWorker(_config(config, "A3C worker"), seed, collector=collector)
        self.holder = holder
        self.weights: dict[str, torch.Tensor] | None = None

    def iterate(self) -> tuple[int, list, dict[str, float], dict[str, Any]]:
        weights = self.weights
        if weights is None:
            # An actor call's result is untyped: this is what ParameterHolder.weights returns.
            weights = cast(dict[str, torch.Tensor], ray.get(self.holder.weights.remote()))
        self.worker.set_weights(weights)
        result = self.worker.compute_gradients()
        self.weights = ray.get(self.holder.apply.remote(result.grads, result.obs))
        return result.steps, result.episodes, result.stats, result.collector


class GradientActors:
    """A3C's GradientWorkers on Ray: the parameter holder and one gradient actor per worker."""

    def __init__(self, cfg: RunConfig, agent: a3c.Agent) -> None:
        self.cfg, self.agent, self.hp = cfg, agent, cfg.hyper
        cpus = cfg.scale.worker_cpus
        self.holder_cls = ray.remote(ParameterHolder).options(num_cpus=0, max_restarts=0)
        self.worker_cls = ray.remote(GradientActor).options(num_cpus=cpus, max_restarts=0)
        self.holder = None
        self.workers: list[Any] = []
        self.seeds: list[int] = []
        self.restarts = 0
        self.steps = [0] * self.hp.workers
        self.collectors: list[dict[str, Any] | None] = [None] * self.hp.workers
        self.lr = 0.0

    def start(self, seed: int) -> None:
        """Start the holder from the agent's weights and optimizer, and the workers (seeded as a3c's
        GradientProcesses)."""
        self.close()
        state = {"policy": self.agent.policy.state_dict(), "optimizer": self.agent.optimizer.state_dict()}
        self.holder = self.holder_cls.remote(self.cfg.to_dict(), state)
        self.seeds = [seed + 100_003 * (rank + 1) for rank in range(self.hp.workers)]
        self.workers = [self.worker_cls.remote(self.cfg.to_dict(), s, self.holder, self.collectors[rank])
                        for rank, s in enumerate(self.seeds)]
        self.set_learning_rate(self.lr or self.hp.learning_rate)

    def set_learning_rate(self, lr: float) -> None:
        self.lr = lr
        if self.holder is not None:
            self.holder.set_lr.remote(lr)

    def worker_steps(self) -> list[int]:
        return list(self.steps)

    def restore_worker_steps(self, steps: list[int]) -> None:
        self.steps = list(steps)

    def collector_states(self) -> list[dict[str, Any] | None]:
        return list(self.collectors)

    def restore_collector_states(self, states: list[dict[str, Any] | None]) -> None:
        self.collectors = list(states)

    def _replace(self, rank: int, reason: str) -> None:
        self.restarts = count_restart(self.restarts, self.cfg.scale.max_worker_restarts, f"A3C worker {rank}", reason)
        ray.kill(self.workers[rank], no_restart=True)
        self.seeds[rank] += 1_000_003
        # The replacement goes on with the lost worker's reward statistics, on new episodes.
        self.workers[rank] = self.worker_cls.remote(self.cfg.to_dict(), self.seeds[rank], self.holder,
                                                    self.collectors[rank])

    def run(self, steps: int, episodes: EpisodeStats, stats: list[dict[str, float]]) -> int:
        """Keep every worker iterating until `steps` env steps are claimed, then sync the agent."""
        per_iter = self.hp.n_steps * self.cfg.env.num_envs
        scale = self.cfg.scale
        claimed = done = 0
        pending: dict[Any, tuple[int, float]] = {}

        def issue(rank: int, fresh: bool = False) -> None:
            nonlocal claimed
            claimed += per_iter
            allowance = scale.timeout_s + (scale.start_timeout_s if fresh else 0.0)
            pending[self.workers[rank].iterate.remote()] = (rank, time.monotonic() + allowance)

        for rank in range(len(self.workers)):
            if claimed < steps:
                issue(rank, fresh=True)
        while pending:
            nearest = min(d for _, d in pending.values())
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=max(nearest - time.monotonic(), 0.0))
            if not ready:
                for ref in [r for r, (_, d) in pending.items() if d <= time.monotonic()]:
                    rank, _ = pending.pop(ref)
                    claimed -= per_iter
                    self._replace(rank, "no answer in time")
                    issue(rank, fresh=True)
                continue
            rank, _ = pending.pop(ready[0])
            try:
                n, finished, s, collector = ray.get(ready[0])
            except _LOST as exc:
                claimed -= per_iter
                self._replace(rank, type(exc).__name__)
                issue(rank, fresh=True)
                continue
            except RayTaskError as exc:
                cause = exc.cause if getattr(exc, "cause", None) is not None else exc
                if "ParameterHolder" in str(exc) or isinstance(cause, RayActorError):
                    raise WorkerLostError(f"A3C parameter holder lost ({type(cause).__name__}); run stopped, the "
                                          "last checkpoint is intact: continue with --resume") from exc
                raise RuntimeError(f"A3C worker {rank} failed: {type(cause).__name__}: {cause}") from exc
            done += n
            self.steps[rank] += n
            self.collectors[rank] = collector
            for ret, length, success in finished:
                episodes.record(ret, length, success)
            stats.append(s)
            if claimed < steps:
                issue(rank)
        self._sync_agent()
        return done

    def _sync_agent(self) -> None:
        """The holder's state into the agent's (shared-memory) tensors, in place."""
        if self.holder is None:
            raise RuntimeError("A3C on Ray: run() before start(seed)")
        try:
            state: dict[str, Any] = ray.get(self.holder.state.remote(), timeout=self.cfg.scale.timeout_s)
        except _LOST as exc:
            raise WorkerLostError(f"A3C parameter holder lost ({type(exc).__name__}); run stopped, the last "
                                  "checkpoint is intact: continue with --resume") from exc
        self.agent.load_state_dict({"policy": state["policy"], "optimizer": state["optimizer"],
                                    "worker_steps": list(self.steps)})

    def close(self) -> None:
        if not ray.is_initialized():
            return
        for handle in [*self.workers, self.holder]:
            if handle is not None:
                ray.kill(handle, no_restart=True)
        self.workers, self.holder = [], None
