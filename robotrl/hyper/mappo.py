"""MAPPO hyperparameters: the `mappo:` section of a run config. Agent: robotrl/agents/mappo.py."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from robotrl.hyper.checks import non_negative, positive


@dataclass(frozen=True)
class Hyper:
    n_steps: int = 100
    """Steps per env per rollout; the batch is n_steps * num_envs * num_agents robot-transitions."""
    batch_size: int = 1600
    """Minibatch size in robot-transitions."""
    n_epochs: int = 10
    learning_rate: float = 5e-4
    anneal_lr: bool = True
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip_range: float = 0.2
    clip_range_vf: float | None = None
    """Clip the (normalized) value update around the old value (None: off)."""
    ent_coef: float = 0.0
    vf_coef: float = 1.0
    max_grad_norm: float = 10.0
    target_kl: float | None = None
    normalize_advantage: bool = True
    critic: Literal["central", "local"] = "central"
    """central: V(global state, agent) as in MAPPO; local: V(own observation, agent), i.e. IPPO."""
    shared_actor: bool = True
    """One actor for all robots with the agent index as input; false: one actor per robot."""
    value_norm: bool = True
    """Learn the critic on running-normalized value targets."""

    def validate(self) -> None:
        positive(self, "learning_rate", "clip_range", "clip_range_vf", "max_grad_norm", "target_kl")
        non_negative(self, "ent_coef", "vf_coef")
        if self.n_steps < 1 or self.batch_size < 1 or self.n_epochs < 1:
            raise ValueError("n_steps, batch_size and n_epochs must be positive")
        if not 0 < self.gamma <= 1 or not 0 <= self.gae_lambda <= 1:
            raise ValueError("gamma must be in (0, 1] and gae_lambda in [0, 1]")
