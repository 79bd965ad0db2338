"""Tabular Q-learning, SARSA and Monte Carlo hyperparameters: the `qlearning:` section of a run config.
Agent: robotrl/agents/qlearning.py."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from robotrl.hyper.checks import fraction, unit


@dataclass(frozen=True)
class Hyper:
    method: Literal["qlearning", "sarsa", "mc"] = "qlearning"
    """Q-learning (off-policy TD), SARSA (on-policy TD) or every-visit Monte Carlo control."""
    learning_rate: float = 0.1
    """Step size alpha."""
    anneal_lr: bool = False
    """Decay alpha linearly to 0 over the run, so that the table settles instead of following the latest
    episodes (Robbins-Monro). Measured on launch/cartpole_qlearning.yaml, seed 0: it hurts there (no
    evaluation episode balanced to the end, against 9 of 10 with a constant alpha): values that grow
    towards 1 / (1 - gamma) need the full step size while they propagate."""
    gamma: float = 0.99
    exploration_initial_eps: float = 1.0
    exploration_final_eps: float = 0.01
    exploration_fraction: float = 0.5
    """Fraction of the run over which epsilon decays."""
    steps_per_collect: int = 64
    """Vector-env steps between the trainer's logging points (learning happens at every step)."""

    def validate(self) -> None:
        fraction(self, "exploration_fraction")
        unit(self, "exploration_initial_eps", "exploration_final_eps")
        if not 0 < self.learning_rate <= 1 or not 0 < self.gamma <= 1:
            raise ValueError("learning_rate and gamma must be in (0, 1]")
        if self.steps_per_collect < 1:
            raise ValueError("steps_per_collect must be positive")
