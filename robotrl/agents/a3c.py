"""Asynchronous advantage actor-critic (A3C; Mnih et al. 2016), on one machine.

A global ActorCritic and its optimizer state (RMSprop or Adam) live in shared memory. Each worker
process owns an env copy and a local network: it copies the global weights, collects n_steps,
computes A2C's loss and clipped gradients on its own rollout, and applies them to the global
parameters with the shared optimizer, without locks and without waiting for the others (Hogwild).

The trainer still owns the loop: `start(seed)` starts the worker processes (`GradientProcesses`,
which a Ray run replaces by actors: both are `GradientWorkers`), `collect()` hands them a budget of
env steps and returns
once the workers have used it, all of them between iterations; logging, evaluation and checkpoints
then see one consistent set of weights. A worker that dies makes `collect()` raise (no hang).
`GradientWorker` (weights in, gradients out) is the unit a scale-out can run on another machine.
"""

from __future__ import annotations

import os
import queue
import signal
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.multiprocessing as mp
from torch import nn

import envs
from policies.actor_critic import ActorCritic
from policies.derived import forget
from robotrl.agents import a2c
from robotrl.agents.common import OnPolicyCollector, build_actor_critic, rollout_storage
from robotrl.agents.protocol import Algorithm, GradientWorkers
from robotrl.config import RunConfig
from robotrl.core.episodes import EpisodeStats
from robotrl.core.returns import explained_variance
from robotrl.core.schedules import learning_rate
from robotrl.core.threads import limit_threads
from robotrl.core.vec_env import VecEnv
from robotrl.hyper.a3c import Hyper


class FinishedEpisodes(EpisodeStats):
    """EpisodeStats that also lists the episodes finished since the last `pop()`, to send elsewhere."""

    def __init__(self, num_envs: int) -> None:
        super().__init__(num_envs)
        self.finished: list[tuple[float, int, float | None]] = []

    def record(self, ret: float, length: int, success: float | None) -> None:
        super().record(ret, length, success)
        self.finished.append((ret, length, success))

    def pop(self) -> list[tuple[float, int, float | None]]:
        out, self.finished = self.finished, []
        return out


@dataclass
class WorkerResult:
    """What one worker iteration produces; all of it is plain tensors and numbers (picklable)."""

    grads: list[torch.Tensor]
    steps: int
    obs: torch.Tensor
    """The rollout's observations, for the global observation normalizer."""
    stats: dict[str, float]
    episodes: list[tuple[float, int, float | None]] = field(default_factory=list)
    collector: dict[str, Any] = field(default_factory=dict)
    """The worker's collector state after this rollout (its reward scaler), for the checkpoint."""


class GradientWorker:
    """Its own env copy and local network: given global weights, the clipped A2C gradient of one rollout."""

    def __init__(self, cfg: RunConfig, seed: int, device: torch.device | None = None,
                 collector: dict[str, Any] | None = None) -> None:
        """`collector`: a checkpoint's collector state of this worker (its reward scaler's statistics)."""
        self.hp: Hyper = cfg.hyper
        self.device = device or torch.device("cpu")
        self.env = envs.make_vec(cfg.env.id, cfg.env.num_envs, **cfg.env.kwargs)
        self.policy = build_actor_critic(cfg, self.env).to(self.device)
        self.storage = rollout_storage(self.hp.n_steps, self.env, self.policy, self.device)
        self.collector = OnPolicyCollector(self.env, self.policy, self.hp.gamma, self.hp.scale_rewards,
                                           self.device)
        self.episodes = FinishedEpisodes(self.env.num_envs)
        if collector:
            self.collector.load_state_dict(collector)
        self.collector.reset(seed=seed)

    def set_weights(self, state: dict[str, torch.Tensor]) -> None:
        self.policy.load_state_dict(state)

    def compute_gradients(self) -> WorkerResult:
        self.collector.fill(self.storage, self.episodes)
        batch = a2c.rollout_batch(self.storage, self.collector.last_value(), self.hp)
        loss, terms = a2c.a2c_loss(self.policy, batch, self.hp)
        self.policy.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = nn.utils.clip_grad_norm_(self.policy.parameters(), self.hp.max_grad_norm)
        stats = {f"losses/{k}": float(v.detach()) for k, v in terms.items()}
        stats["losses/explained_variance"] = explained_variance(batch.values, batch.returns)
        stats["losses/grad_norm"] = float(grad_norm)
        grads = [torch.zeros_like(p) if p.grad is None else p.grad.detach().clone() for p in self.policy.parameters()]
        obs = batch.obs.detach().clone()
        self.storage.clear()
        return WorkerResult(grads, batch.obs.shape[0], obs, stats, self.episodes.pop(), self.collector.state_dict())

    def close(self) -> None:
        self.env.close()


def share_optimizer_state(optimizer: torch.optim.Optimizer) -> None:
    """Create the optimizer's per-parameter state now (zeros) and move it to shared memory.

    torch creates the state lazily at the first step; a step with zero gradients and lr 0 creates it
    in the layout this torch version expects, then it is zeroed again (step count included).
    """
    saved_lr = [g["lr"] for g in optimizer.param_groups]
    for g in optimizer.param_groups:
        g["lr"] = 0.0
        for p in g["params"]:
            p.grad = torch.zeros_like(p)
    optimizer.step()
    for g, lr in zip(optimizer.param_groups, saved_lr, strict=True):
        g["lr"] = lr
        for p in g["params"]:
            p.grad = None
            for value in optimizer.state[p].values():
                if torch.is_tensor(value):
                    value.zero_()
                    value.share_memory_()


def apply_gradients(params: list[nn.Parameter], optimizer: torch.optim.Optimizer,
                    grads: list[torch.Tensor], lr: float) -> None:
    """One optimizer step of the global parameters with a worker's gradients (no lock: Hogwild)."""
    for p, g in zip(params, grads, strict=True):
        p.grad = g
    for group in optimizer.param_groups:
        group["lr"] = lr
    optimizer.step()
    for p in params:
        p.grad = None


@dataclass
class Control:
    """Shared counters: the step budget handed out by the trainer, and what each worker has done."""

    lock: Any
    stop: Any
    target: Any
    claimed: Any
    done: Any
    worker_steps: Any
    lr: Any


@contextmanager
def held(lock: Any, still_there: Callable[[], None]) -> Iterator[None]:
    """Acquire `lock`, calling `still_there` (which raises) while waiting: a process killed while it
    held the lock must not leave the others waiting forever."""
    while not lock.acquire(timeout=0.5):
        still_there()
    try:
        yield
    finally:
        lock.release()


def _worker_main(rank: int, cfg: RunConfig, seed: int, collector: dict[str, Any] | None, policy: ActorCritic,
                 opt_states: list[dict[str, Any]], ctl: Control, results: Any, errors: Any, parent: int) -> None:
    # Ctrl-C reaches the whole process group, and so does the SIGTERM of `timeout`, a batch scheduler or a
    # container stop: the trainer checkpoints and stops the workers itself (robotrl.train.stop), so a worker
    # must not die of either first (the trainer would see a dead worker and stop without the checkpoint).
    # A worker whose trainer is gone exits by itself (parent_alive below); close() kills a stuck one.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    limit_threads(1)
    try:
        torch.manual_seed(seed)
        np.random.seed(seed % 2**32)
        worker = GradientWorker(cfg, seed, collector=collector)
        per_iter = cfg.hyper.n_steps * cfg.env.num_envs
        params = list(policy.parameters())
        optimizer = a2c.make_optimizer(params, cfg.hyper)
        for p, state in zip(params, opt_states, strict=True):
            optimizer.state[p] = state

        def parent_alive() -> None:
            # A trainer killed by a signal cannot set `stop`: its workers notice they were orphaned instead.
            if os.getppid() != parent:
                raise SystemExit(0)

        while not ctl.stop.is_set():
            parent_alive()
            with held(ctl.lock, parent_alive):
                go = ctl.claimed.value < ctl.target.value
                if go:
                    ctl.claimed.value += per_iter
            if not go:
                time.sleep(0.005)
                continue
            # The normalizer's mean/var/count must be read and merged whole; the weights are Hogwild.
            with held(ctl.lock, parent_alive):
                worker.set_weights(policy.state_dict())
            result = worker.compute_gradients()
            apply_gradients(params, optimizer, result.grads, ctl.lr.value)
            with held(ctl.lock, parent_alive):
                policy.normalizer.update(result.obs)
            results.put((rank, result.episodes, result.stats, result.collector))
            with held(ctl.lock, parent_alive):
                ctl.done.value += result.steps
                ctl.worker_steps[rank] += result.steps
        worker.close()
    except SystemExit:
        raise
    except BaseException:
        errors.put((rank, traceback.format_exc()))
        raise SystemExit(1) from None


class GradientProcesses:
    """A3C's workers as processes on this machine (GradientWorkers): their shared counters and queues;
    `start(seed)` (re)starts them."""

    def __init__(self, cfg: RunConfig, policy: nn.Module, optimizer: torch.optim.Optimizer) -> None:
        self.cfg, self.policy, self.optimizer = cfg, policy, optimizer
        self.ctx = mp.get_context("spawn")
        self.ctl = Control(lock=self.ctx.Lock(), stop=self.ctx.Event(), target=self.ctx.Value("q", 0, lock=False),
                           claimed=self.ctx.Value("q", 0, lock=False), done=self.ctx.Value("q", 0, lock=False),
                           worker_steps=self.ctx.Array("q", cfg.hyper.workers, lock=False),
                           lr=self.ctx.Value("d", cfg.hyper.learning_rate))
        self.results = self.ctx.Queue()
        self.errors = self.ctx.Queue()
        self.procs: list[Any] = []
        self.collectors: list[dict[str, Any] | None] = [None] * cfg.hyper.workers

    def start(self, seed: int) -> None:
        self.close()
        self.ctl.stop.clear()
        states = [self.optimizer.state[p] for p in self.policy.parameters()]
        for rank in range(self.cfg.hyper.workers):
            proc = self.ctx.Process(target=_worker_main, name=f"a3c-worker-{rank}", daemon=True,
                                    args=(rank, self.cfg, seed + 100_003 * (rank + 1), self.collectors[rank],
                                          self.policy, states,
                                          self.ctl, self.results, self.errors, os.getpid()))
            proc.start()
            self.procs.append(proc)

    def set_learning_rate(self, lr: float) -> None:
        self.ctl.lr.value = lr

    def worker_steps(self) -> list[int]:
        return list(self.ctl.worker_steps)

    def restore_worker_steps(self, steps: list[int]) -> None:
        for rank, n in enumerate(steps):
            self.ctl.worker_steps[rank] = n

    def collector_states(self) -> list[dict[str, Any] | None]:
        return list(self.collectors)

    def restore_collector_states(self, states: list[dict[str, Any] | None]) -> None:
        self.collectors = list(states)

    def check(self) -> None:
        """Raise a one-line error naming the worker when one has died."""
        for rank, proc in enumerate(self.procs):
            if proc.is_alive():
                continue
            try:
                who, text = self.errors.get(timeout=1.0)
                last = text.strip().splitlines()[-1]
                raise RuntimeError(f"A3C worker {who} crashed: {last}")
            except queue.Empty:
                raise RuntimeError(f"A3C worker {rank} died (exit code {proc.exitcode})") from None

    def drain(self, episodes: EpisodeStats, stats: list[dict[str, float]]) -> None:
        while True:
            try:
                rank, finished, s, collector = self.results.get_nowait()
            except queue.Empty:
                return
            self.collectors[rank] = collector
            for ret, length, success in finished:
                episodes.record(ret, length, success)
            stats.append(s)

    def run(self, steps: int, episodes: EpisodeStats, stats: list[dict[str, float]]) -> int:
        """Hand out `steps` more env steps and wait until every claimed iteration is applied."""
        with held(self.ctl.lock, self.check):
            start = self.ctl.done.value
            self.ctl.target.value = max(self.ctl.target.value, self.ctl.claimed.value) + steps
        while True:
            self.drain(episodes, stats)
            with held(self.ctl.lock, self.check):
                finished = self.ctl.claimed.value >= self.ctl.target.value and \
                    self.ctl.done.value == self.ctl.claimed.value
                done = self.ctl.done.value
            if finished:
                break
            self.check()
            time.sleep(0.002)
        self.drain(episodes, stats)
        return done - start

    def close(self) -> None:
        self.ctl.stop.set()
        for proc in self.procs:
            proc.join(timeout=5.0)
            if proc.is_alive():
                proc.kill()  # workers ignore SIGTERM (see _worker_main)
                proc.join(timeout=5.0)
        self.procs = []


def make_policy(cfg: RunConfig, env: VecEnv) -> ActorCritic:
    """The network this agent trains, for loading a checkpoint without an optimizer or workers."""
    return build_actor_critic(cfg, env)


class Agent:
    """A3C: the trainer's collect() lets the workers run a step budget; update() reports their stats."""

    def __init__(self, cfg: RunConfig, env: VecEnv, device: torch.device) -> None:
        del device  # the workers share CPU memory: ALGORITHM.devices is ("cpu",)
        self.hp: Hyper = cfg.hyper
        self.total_steps = cfg.train.total_steps
        self.policy = make_policy(cfg, env)
        self.policy.share_memory()
        self.optimizer = a2c.make_optimizer(list(self.policy.parameters()), self.hp)
        share_optimizer_state(self.optimizer)
        self.workers: GradientWorkers = GradientProcesses(cfg, self.policy, self.optimizer)
        self.stats: list[dict[str, float]] = []
        self.collect_s = 0.0
        self.worker_steps_before = [0] * self.hp.workers

    def start(self, seed: int) -> None:
        self.workers.start(seed)

    def collect(self, episodes: EpisodeStats) -> int:
        t0 = time.perf_counter()
        self.worker_steps_before = self.workers.worker_steps()
        steps = self.workers.run(self.hp.steps_per_collect, episodes, self.stats)
        # The workers updated the shared normalizer from their processes, which this one's caches cannot see.
        forget(self.policy)
        self.collect_s = time.perf_counter() - t0
        return steps

    def update(self, progress: float) -> dict[str, float]:
        """The workers already applied their gradients: set the next lr and report what they did."""
        hp = self.hp
        lr = self._schedule_learning_rate(progress)
        out: dict[str, float] = {}
        if self.stats:
            for key in self.stats[0]:
                out[key] = float(np.mean([s[key] for s in self.stats]))
        out["charts/worker_updates"] = float(len(self.stats))
        self.stats = []
        for rank, (now, before) in enumerate(zip(self.workers.worker_steps(), self.worker_steps_before,
                                                 strict=True)):
            out[f"charts/SPS_worker{rank}"] = (now - before) / max(self.collect_s, 1e-9)
        out["charts/SPS_workers"] = sum(out[f"charts/SPS_worker{r}"] for r in range(hp.workers))
        out["charts/learning_rate"] = lr
        if self.policy.continuous:
            out["charts/action_std"] = float(self.policy.log_std.detach().exp().mean())
        return out

    def state_dict(self) -> dict[str, Any]:
        return {"policy": {k: v.clone() for k, v in self.policy.state_dict().items()},
                "optimizer": self.optimizer.state_dict(),
                "worker_steps": self.workers.worker_steps(),
                "collectors": self.workers.collector_states()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Copy into the shared tensors in place, so the workers started afterwards see the same memory."""
        with torch.no_grad():
            for k, v in self.policy.state_dict().items():
                v.copy_(state["policy"][k])
            saved = state["optimizer"]["state"]
            for i, p in enumerate(self.policy.parameters()):
                for key, value in self.optimizer.state[p].items():
                    if torch.is_tensor(value):
                        value.copy_(saved[i][key])
        self.workers.restore_worker_steps(list(state["worker_steps"]))
        # Each worker's reward scaler goes on from its statistics (checkpoints before them had none).
        if "collectors" in state:
            self.workers.restore_collector_states(list(state["collectors"]))
        # update() sets the scheduled rate only after a collect: the resumed run's first collect (50k steps in
        # reacher_a3c) would otherwise run at the base rate. The workers' steps are the steps trained.
        self._schedule_learning_rate(min(sum(int(n) for n in state["worker_steps"]) / self.total_steps, 1.0))

    def _schedule_learning_rate(self, progress: float) -> float:
        """Give the workers the schedule's rate at `progress` (0 to 1 of the budget); returns it."""
        lr = learning_rate(self.hp.learning_rate, self.hp.anneal_lr, progress)
        self.workers.set_learning_rate(lr)
        return lr

    def close(self) -> None:
        self.workers.close()


ALGORITHM = Algorithm(name="a3c", agent=Agent, make_policy=make_policy, devices=("cpu",))
