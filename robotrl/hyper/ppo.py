"""PPO hyperparameters: the `ppo:` section of a run config. Agent: robotrl/agents/ppo.py."""

from __future__ import annotations

from dataclasses import dataclass

from robotrl.hyper.checks import non_negative, positive


@dataclass(frozen=True)
class PPOUpdate:
    """What PPO's update reads (agents/ppo.py: clipped_loss, ppo_epochs): the rollout's size, its epochs
    of minibatches and the clipped objective. PPO's and MAPPO's schemas extend it, MAPPO with its own
    defaults, so that the two cannot drift apart in names, checks or meaning."""

    n_steps: int = 64
    """Steps per env per rollout; the batch is n_steps * num_envs."""
    batch_size: int = 256
    """Minibatch size (the rollout is split into batch / batch_size minibatches)."""
    n_epochs: int = 10
    """Passes over the rollout per update."""
    learning_rate: float = 3e-4
    anneal_lr: bool = True
    """Decay the learning rate linearly to 0 over the run."""
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip_range: float = 0.2
    """Policy ratio clip epsilon."""
    clip_range_vf: float | None = None
    """Clip the value update around the old value (None: off)."""
    ent_coef: float = 0.0
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    target_kl: float | None = None
    """Stop the epochs early when the approximate KL exceeds 1.5 * target_kl (None: off)."""
    normalize_advantage: bool = True

    def validate(self) -> None:
        positive(self, "learning_rate", "clip_range", "clip_range_vf", "max_grad_norm", "target_kl")
        non_negative(self, "ent_coef", "vf_coef")
        if self.n_steps < 1 or self.batch_size < 1 or self.n_epochs < 1:
            raise ValueError("n_steps, batch_size and n_epochs must be positive")
        if not 0 < self.gamma <= 1 or not 0 <= self.gae_lambda <= 1:
            raise ValueError("gamma must be in (0, 1] and gae_lambda in [0, 1]")


@dataclass(frozen=True)
class Hyper(PPOUpdate):
    scale_rewards: bool = True
    """Divide rewards by the running std of the discounted return."""
