"""DQN hyperparameters: the `dqn:` section of a run config. Agent: robotrl/agents/dqn.py."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from robotrl.hyper.checks import fits_in_buffer, fraction, positive


@dataclass(frozen=True)
class Hyper:
    buffer_size: int = 100_000
    """Transitions the replay memory holds (oldest overwritten)."""
    learning_rate: float = 1e-4
    anneal_lr: bool = False
    """Decay the learning rate linearly to 0 over the run, so that the last greedy policy settles
    instead of swinging between good and collapsed as DQN's often do."""
    batch_size: int = 64
    gamma: float = 0.99
    learning_starts: int = 1_000
    """Environment steps of random-ish experience before the first gradient step."""
    train_freq: int = 1
    """Vector-env steps between rounds of `gradient_steps` gradient updates."""
    gradient_steps: int = 1
    steps_per_iteration: int = 1_000
    """Environment steps per trainer iteration (one metrics row); learning interleaves inside it."""
    target_update_interval: int = 1_000
    """Environment steps between target-network updates."""
    tau: float = 1.0
    """Target update weight: 1 copies the online net; < 1 is Polyak averaging."""
    double: bool = False
    """Double DQN targets."""
    dueling: bool = False
    """Dueling head: Q = V + A - mean(A)."""
    n_step: int = 1
    """Steps summed in the return before bootstrapping (1: classic DQN)."""
    augment_shift: int = 0
    """Pixels only: shift each replayed stack (and, independently, its next stack) by up to this many
    pixels (DrQ's random shift; 0: off)."""
    loss: Literal["huber", "mse"] = "huber"
    max_grad_norm: float | None = 10.0
    """Clip the global gradient norm (None: off)."""
    exploration_initial_eps: float = 1.0
    exploration_final_eps: float = 0.05
    exploration_fraction: float = 0.1
    """Fraction of the run over which epsilon decays."""
    average_from: float | None = None
    """Deliver (evaluate, save as the policy, export) the mean of the online network's weights over the
    gradient steps after this fraction of the run (stochastic weight averaging); None: the last weights.
    The online network still acts and learns."""

    def validate(self) -> None:
        positive(self, "learning_rate", "max_grad_norm")
        fraction(self, "exploration_fraction")
        if min(self.buffer_size, self.batch_size, self.train_freq, self.target_update_interval, self.n_step,
               self.steps_per_iteration) < 1:
            raise ValueError("buffer_size, batch_size, train_freq, target_update_interval, n_step and "
                             "steps_per_iteration must be positive")
        if self.learning_starts < 0 or self.augment_shift < 0:
            raise ValueError("learning_starts and augment_shift must be >= 0")
        positive(self, "gradient_steps")  # 0 would collect without ever learning
        fits_in_buffer(self)
        if not 0 < self.tau <= 1 or not 0 < self.gamma <= 1:
            raise ValueError("tau and gamma must be in (0, 1]")
        if not 0 <= self.exploration_final_eps <= 1 or not 0 <= self.exploration_initial_eps <= 1:
            raise ValueError("exploration epsilons must be in [0, 1]")
        if self.average_from is not None and not 0 <= self.average_from < 1:
            raise ValueError(f"average_from must be in [0, 1) (a fraction of the run), got {self.average_from}")
