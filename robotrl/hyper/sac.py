"""SAC hyperparameters: the `sac:` section of a run config. Agent: robotrl/agents/sac.py.

The defaults are stable-baselines3's SAC defaults (RL Zoo's MuJoCo settings only raise learning_starts),
so that `robotrl compare` runs the same algorithm on both sides. Network sizes and observation
normalization come from the run's `policy:` section (hidden, activation, normalize_obs).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from robotrl.hyper.checks import fits_in_buffer, non_negative, positive


@dataclass(frozen=True)
class Hyper:
    buffer_size: int = 1_000_000
    """Transitions the replay memory holds (oldest overwritten)."""
    learning_starts: int = 100
    """Environment steps of uniformly random actions before the actor acts and the first gradient step
    (SB3: random while steps < learning_starts, training once steps > learning_starts)."""
    batch_size: int = 256
    tau: float = 0.005
    """Polyak weight of the target critics' update (1: copy)."""
    gamma: float = 0.99
    learning_rate: float = 3e-4
    """Adam's rate for the actor, the critics and the temperature alike (as SB3)."""
    train_freq: int = 1
    """Vector-env steps between rounds of `gradient_steps` gradient steps."""
    gradient_steps: int = 1
    """Gradient steps per round (one per env step with train_freq 1 and one env: RL Zoo's setting)."""
    target_update_interval: int = 1
    """Gradient steps between target-critic updates."""
    ent_coef: Literal["auto"] | float = "auto"
    """The entropy temperature alpha: a fixed number, or "auto" to learn it so that the policy's
    entropy tracks `target_entropy` (Haarnoja et al. 2018, "SAC: algorithms and applications")."""
    ent_coef_init: float = 1.0
    """Starting alpha when ent_coef is "auto" (SB3's "auto_<init>")."""
    target_entropy: Literal["auto"] | float = "auto"
    """Entropy the learned temperature aims for; "auto": minus the number of action dimensions."""
    steps_per_iteration: int = 1_000
    """Environment steps per trainer iteration (one metrics row); learning interleaves inside it."""
    td3: bool = False
    """Train TD3 instead (Fujimoto et al. 2018): a deterministic tanh actor explored with Gaussian
    noise, target policy smoothing, actor and target updates every `policy_delay` gradient steps; no
    temperature. The exported policy is the same tanh-mean actor."""
    policy_delay: int = 2
    """TD3: critic steps per actor (and target) update."""
    exploration_noise: float = 0.1
    """TD3: std of the Gaussian noise on the actor's [-1, 1] action while collecting."""
    target_noise: float = 0.2
    """TD3: std of the smoothing noise on the target action."""
    target_noise_clip: float = 0.5
    """TD3: the smoothing noise is clipped to +- this."""

    def validate(self) -> None:
        if min(self.buffer_size, self.batch_size, self.train_freq, self.target_update_interval,
               self.steps_per_iteration, self.policy_delay) < 1:
            raise ValueError("buffer_size, batch_size, train_freq, target_update_interval, steps_per_iteration "
                             "and policy_delay must be positive")
        if self.learning_starts < 0:
            raise ValueError(f"learning_starts: expected a non-negative integer, got {self.learning_starts}")
        positive(self, "gradient_steps")  # 0 would collect without ever learning
        fits_in_buffer(self)
        if not 0 < self.tau <= 1 or not 0 < self.gamma <= 1:
            raise ValueError("tau and gamma must be in (0, 1]")
        # The shared checks refuse NaN as well (`not value > 0`): a .nan in YAML would make every loss NaN.
        positive(self, "learning_rate", "ent_coef_init")
        if not isinstance(self.ent_coef, str):
            non_negative(self, "ent_coef")
        if not isinstance(self.target_entropy, str) and not math.isfinite(self.target_entropy):
            raise ValueError(f"target_entropy: expected 'auto' or a finite number, got {self.target_entropy}")
        non_negative(self, "exploration_noise", "target_noise", "target_noise_clip")
