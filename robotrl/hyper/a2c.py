"""A2C hyperparameters: the `a2c:` section of a run config. Agent: robotrl/agents/a2c.py."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from robotrl.hyper.checks import non_negative, open_unit, positive


@dataclass(frozen=True)
class Hyper:
    n_steps: int = 5
    """Steps per env per update; the batch is n_steps * num_envs (SB3: 5)."""
    learning_rate: float = 7e-4
    anneal_lr: bool = False
    """Decay the learning rate linearly to 0 over the run."""
    gamma: float = 0.99
    gae_lambda: float = 1.0
    """1.0: plain n-step returns (SB3's default); below 1: GAE(lambda)."""
    ent_coef: float = 0.0
    """Weight of the entropy bonus."""
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    """Global gradient-norm clip."""
    optimizer: Literal["rmsprop", "adam"] = "rmsprop"
    """RMSprop as in the A3C paper and SB3, or Adam."""
    rmsprop_alpha: float = 0.99
    """RMSprop's smoothing constant (SB3: 0.99)."""
    optimizer_eps: float = 1e-5
    """Epsilon of RMSprop / Adam (SB3: 1e-5)."""
    normalize_advantage: bool = False
    """Standardize the advantages of each batch (SB3 default: off)."""
    scale_rewards: bool = False
    """Divide rewards by the running std of the discounted return."""

    def validate(self) -> None:
        positive(self, "learning_rate", "max_grad_norm", "optimizer_eps")
        open_unit(self, "rmsprop_alpha")  # 1 never updates the square average (steps of lr * g / eps); above, NaN
        non_negative(self, "ent_coef", "vf_coef")
        if self.n_steps < 1:
            raise ValueError(f"n_steps must be positive, got {self.n_steps}")
        if not 0 < self.gamma <= 1 or not 0 <= self.gae_lambda <= 1:
            raise ValueError("gamma must be in (0, 1] and gae_lambda in [0, 1]")
