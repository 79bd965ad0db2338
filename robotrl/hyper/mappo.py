"""MAPPO hyperparameters: the `mappo:` section of a run config. Agent: robotrl/agents/mappo.py."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from robotrl.hyper.ppo import PPOUpdate


@dataclass(frozen=True)
class Hyper(PPOUpdate):
    """PPO's update (its fields and checks) with MAPPO's defaults, and the team's critic and actors."""

    n_steps: int = 100
    """Steps per env per rollout; the batch is n_steps * num_envs * num_agents robot-transitions."""
    batch_size: int = 1600
    """Minibatch size in robot-transitions."""
    learning_rate: float = 5e-4
    vf_coef: float = 1.0
    max_grad_norm: float = 10.0
    critic: Literal["central", "local"] = "central"
    """central: V(global state, agent) as in MAPPO; local: V(own observation, agent), i.e. IPPO."""
    shared_actor: bool = True
    """One actor for all robots with the agent index as input; false: one actor per robot."""
    value_norm: bool = True
    """Learn the critic on running-normalized value targets (clip_range_vf then clips in those units)."""
