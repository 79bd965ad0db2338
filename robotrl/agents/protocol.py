"""The contract between the trainer and an algorithm, written down.

The trainer (robotrl.train.trainer) builds an agent through its `Algorithm` entry, then calls, in this
order and nothing else:

    agent.load_state_dict(state)      only when resuming, before start
    agent.start(seed)                 once: reset the envs (or start worker processes) with this seed
    loop:
        steps = agent.collect(episodes)      one unit of experience (a rollout; or env steps with their
                                             gradient steps for off-policy agents; or a worker budget)
        metrics = agent.update(progress)     learn from it; progress in [0, 1] drives schedules
        agent.state_dict()                   at checkpoints (replay buffers included)
        agent.policy                         the network evaluations, checkpoints and export use
    agent.close()                     always, also after an error

Agents never write files, log, evaluate or checkpoint: the trainer does, once, for all of them.

Two parts of an agent are seams that a scale-out backend (robotrl.scale, Ray) replaces before `start`:
an on-policy agent's `collector` (a `RolloutCollector`: its own envs, or rollout workers) and A3C's
`workers` (`GradientWorkers`: local processes, or actors). The agent calls them the same way either way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar, runtime_checkable

import torch
from torch import nn

from robotrl.config import RunConfig
from robotrl.core.episodes import EpisodeStats
from robotrl.core.vec_env import EnvHandle


@runtime_checkable
class Agent(Protocol):
    """One learning algorithm's state and its two steps, collect and update."""

    @property
    def policy(self) -> nn.Module:
        """The network to evaluate, save as `policy` in checkpoints and export (for DQN with weight
        averaging, the averaged network rather than the one acting)."""
        ...

    def start(self, seed: int) -> None:
        """Reset the training envs with `seed` (a resumed run passes seed + step), or start the workers."""
        ...

    def collect(self, episodes: EpisodeStats) -> int:
        """Gather one unit of experience; record finished episodes in `episodes`; return env steps taken."""
        ...

    def update(self, progress: float) -> dict[str, float]:
        """Learn from what collect gathered; return metrics (CleanRL's names: losses/..., charts/...),
        collection timings included."""
        ...

    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed run needs: networks, optimizers, normalizers, replay, counters.
        `state["policy"]` is the policy's state dict, which is what eval and export load."""
        ...

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what state_dict returned (called before start)."""
        ...

    def close(self) -> None:
        """Stop worker processes and release what the agent owns (not the env: the trainer closes it)."""
        ...


StorageT = TypeVar("StorageT", contravariant=True)


class RolloutCollector(Protocol[StorageT]):
    """Fills an on-policy agent's rollout storage (PPO, A2C: RolloutStorage; MAPPO: MultiRollout)."""

    @property
    def timings(self) -> dict[str, float]:
        """Where the last fill's time went (time/...), for update()'s metrics; empty for local envs."""
        ...

    def reset(self, seed: int | None = None) -> None:
        """Start new episodes in every env, seeded seed + i (None: unseeded)."""
        ...

    def fill(self, storage: StorageT, episodes: EpisodeStats, /) -> None:
        """Step every env storage.steps times with the current policy; record finished episodes."""
        ...

    def last_value(self) -> torch.Tensor:
        """V of the observations after the rollout [columns], GAE's bootstrap."""
        ...


class GradientWorkers(Protocol):
    """A3C's asynchronous workers, each applying the gradients of its own rollouts to the global network:
    processes on this machine (agents.a3c.GradientProcesses) or Ray actors (scale.ray_a3c)."""

    def start(self, seed: int) -> None:
        """(Re)start the workers; worker k's envs are seeded from seed and k."""
        ...

    def run(self, steps: int, episodes: EpisodeStats, stats: list[dict[str, float]]) -> int:
        """Let the workers use `steps` more env steps; returns once all of them are applied, with the env
        steps taken. Finished episodes go to `episodes`, each worker update's metrics to `stats`."""
        ...

    def set_learning_rate(self, lr: float) -> None:
        """The learning rate of the workers' next optimizer steps."""
        ...

    def worker_steps(self) -> list[int]:
        """Env steps each worker has taken since the run began."""
        ...

    def restore_worker_steps(self, steps: list[int]) -> None:
        """Continue the per-worker step counts of a checkpoint."""
        ...

    def collector_states(self) -> list[dict[str, Any] | None]:
        """Each worker's latest collector state (its reward scaler), None before its first report."""
        ...

    def restore_collector_states(self, states: list[dict[str, Any] | None]) -> None:
        """The collector states the workers start from at the next start(seed)."""
        ...

    def close(self) -> None:
        """Stop the workers (no-op when they are not running)."""
        ...


# The env and policy arguments are Any: each algorithm takes its own kind (a VecEnv or a MultiVecEnv; an
# ActorCritic, a QNetwork, ...), and a callable that takes a narrower type is not assignable to one typed
# with the wider type.
AgentFactory = Callable[[RunConfig, Any, torch.device], Agent]
PolicyFactory = Callable[[RunConfig, Any], nn.Module]
EnvFactory = Callable[[RunConfig, int], EnvHandle]
Evaluator = Callable[[Any, RunConfig, int, int], dict[str, Any]]


@dataclass(frozen=True)
class Algorithm:
    """How the trainer, eval and export reach one algorithm without probing its module."""

    name: str
    """The config's `algo:` value (a key of robotrl.hyper.HYPER)."""
    agent: AgentFactory
    """(config, training env, device) -> Agent."""
    make_policy: PolicyFactory
    """(config, env) -> the policy network alone, for loading a checkpoint without optimizer or replay."""
    make_env: EnvFactory | None = None
    """(config, num_envs) -> training env; None: the Gymnasium vector env of cfg.env (envs.make_vec)."""
    evaluate: Evaluator | None = None
    """(policy, config, episodes, seed) -> evaluation dict; None: the single-robot evaluation
    (robotrl.train.evaluate) of the policy's deterministic action."""
    devices: tuple[str, ...] = ("cpu", "cuda")
    """Devices the agent runs on; the trainer refuses others in one line."""
    multi_robot: bool = False
    """Trains a team on a MultiVecEnv (exported as one ONNX actor per robot)."""
