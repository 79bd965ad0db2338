"""REINFORCE hyperparameters: the `reinforce:` section of a run config. Agent: robotrl/agents/reinforce.py."""

from __future__ import annotations

from dataclasses import dataclass

from robotrl.hyper.checks import non_negative, positive


@dataclass(frozen=True)
class Hyper:
    batch_steps: int = 5000
    """Update once at least this many transitions of finished episodes are stored."""
    learning_rate: float = 1e-3
    """Adam step size of the policy."""
    gamma: float = 0.99
    baseline: bool = True
    """Subtract a learned V(s_t) from the return (A_t = G_t - V(s_t)); off: A_t = G_t."""
    value_learning_rate: float = 1e-3
    """Adam step size of the baseline V(s)."""
    value_steps: int = 20
    """Full-batch gradient steps on the baseline per update."""
    normalize_advantage: bool = False
    """Standardize A_t over the batch (a second variance reduction; off to see the baseline's alone)."""
    ent_coef: float = 0.0
    """Weight of the entropy bonus."""
    max_grad_norm: float | None = None
    """Clip the policy gradient's global norm (None: off)."""
    grad_var_chunks: int = 0
    """Measure the policy-gradient variance from this many disjoint parts of each batch (0: off)."""

    def validate(self) -> None:
        positive(self, "learning_rate", "value_learning_rate", "max_grad_norm")
        non_negative(self, "ent_coef")
        if self.batch_steps < 1 or self.value_steps < 0:
            raise ValueError("batch_steps must be positive and value_steps non-negative")
        if self.baseline and self.value_steps < 1:
            raise ValueError("value_steps: expected a positive integer with baseline on (0 would subtract an "
                             f"untrained critic's values), got {self.value_steps}")
        if not 0 < self.gamma <= 1:
            raise ValueError(f"gamma must be in (0, 1], got {self.gamma}")
        if self.grad_var_chunks == 1 or self.grad_var_chunks < 0:
            raise ValueError(f"grad_var_chunks must be 0 (off) or at least 2, got {self.grad_var_chunks}")
