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
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

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


AgentFactory = Callable[[RunConfig, Any, torch.device], Agent]
PolicyFactory = Callable[[RunConfig, Any], nn.Module]
EnvFactory = Callable[[RunConfig, int], EnvHandle]
Evaluator = Callable[[nn.Module, RunConfig, int, int], dict[str, Any]]


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
