"""SAC's networks: a tanh-squashed Gaussian actor and twin Q critics (also TD3's, which uses the mean).

Laid out as stable-baselines3's SAC policy (`latent_pi`, `mu`, `log_std` heads; critics `qf0`, `qf1`
over concat(obs, action)) with PyTorch's default initialization, so that SB3's weights load into ours
one to one (tests/test_sb3_sac_equivalence.py) and both sides start from the same distribution.
Actions live in [-1, 1] (the tanh's range); `to_env` maps them onto the actuator bounds. What runs on
the robot is the deterministic head, tanh(mu), with the normalizer and the scaling: `export_actor()`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from policies.activations import ACTIVATIONS
from policies.bounds import register_action_bounds, scale_to_bounds
from policies.normalizer import obs_normalizer

LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0
"""Clamp of the state-dependent log-std (SB3's and the original SAC's bounds)."""
SQUASH_EPS = 1e-6
"""Inside log(1 - tanh(u)^2 + eps): keeps the log finite where tanh saturates (SB3 and CleanRL alike)."""
HALF_LOG_2PI = 0.5 * float(np.log(2 * np.pi))


def _trunk(sizes: Sequence[int], activation: str) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers += [nn.Linear(sizes[i], sizes[i + 1]), ACTIVATIONS[activation]()]
    return nn.Sequential(*layers)


def _forward(seq: nn.Sequential, x: torch.Tensor, frozen: bool = False) -> torch.Tensor:
    """Run `seq` layer by layer without nn.Module's call machinery (it costs more than these layers on a
    few rows); `frozen`: the Linear weights take no gradient (the actor's loss through the critics).
    ReLU runs in place on the Linear's fresh output (its backward needs only the ReLU's own result)."""
    for layer in seq:
        if isinstance(layer, nn.Linear):
            w, b = (layer.weight.detach(), layer.bias.detach()) if frozen else (layer.weight, layer.bias)
            x = F.linear(x, w, b)
        elif isinstance(layer, nn.ReLU):
            x = torch.relu_(x)
        else:
            x = layer.forward(x)
    return x


class SquashedGaussianActor(nn.Module):
    """pi(a|s) = tanh(N(mu(s), std(s))): the SAC policy, and with `mean_action` TD3's deterministic one."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: Sequence[int] = (256, 256), activation: str = "relu",
                 normalize_obs: bool = False, action_low: Sequence[float] | None = None,
                 action_high: Sequence[float] | None = None) -> None:
        super().__init__()
        self.obs_dim, self.act_dim, self.continuous = obs_dim, act_dim, True
        register_action_bounds(self, act_dim, action_low, action_high)
        self.normalizer = obs_normalizer(obs_dim, normalize_obs)
        self.latent_pi = _trunk([obs_dim, *hidden], activation)
        self.mu = nn.Linear(hidden[-1] if hidden else obs_dim, act_dim)
        self.log_std = nn.Linear(hidden[-1] if hidden else obs_dim, act_dim)

    def mean_action(self, z: torch.Tensor) -> torch.Tensor:
        """tanh(mu) of normalized observations `z`, with gradients: TD3's actor, SAC's deterministic head."""
        return torch.tanh(self.mu(_forward(self.latent_pi, z)))

    def _mean_log_std(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # The heads through F.linear: nn.Module's call costs about as much as these small layers.
        latent = _forward(self.latent_pi, z)
        mean = F.linear(latent, self.mu.weight, self.mu.bias)
        return mean, F.linear(latent, self.log_std.weight, self.log_std.bias).clamp(LOG_STD_MIN, LOG_STD_MAX)

    def sample(self, z: torch.Tensor, noise: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(action, log pi(action|s)) for normalized observations `z` and standard normal `noise` of the
        action's shape, reparametrized so gradients reach mu and log_std. The density is the Gaussian's
        in closed form from its noise, minus the tanh's log-Jacobian."""
        mean, log_std = self._mean_log_std(z)
        action = torch.tanh(mean + log_std.exp() * noise)
        log_prob = (noise.square() * -0.5 - log_std).sum(-1) - self.act_dim * HALF_LOG_2PI
        log_prob = log_prob - torch.log(1.0 - action.square() + SQUASH_EPS).sum(-1)
        return action, log_prob

    @torch.no_grad()
    def explore(self, obs: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """A sampled [-1, 1] action for raw observations: what SAC collects with (sample()'s action,
        without the log-density that acting does not use)."""
        mean, log_std = self._mean_log_std(self.normalizer(obs))
        return torch.tanh(mean + log_std.exp() * noise)

    @torch.no_grad()
    def deterministic(self, obs: torch.Tensor) -> torch.Tensor:
        """tanh(mu) for raw observations: what evaluation and export run."""
        return self.mean_action(self.normalizer(obs))

    def to_env(self, action: torch.Tensor) -> torch.Tensor:
        """[-1, 1] policy units onto the actuator bounds, clipped."""
        return scale_to_bounds(self, action, self.action_low, self.action_high)

    def export_actor(self) -> nn.Module:
        """Raw observations -> env actions through the deterministic head (for ONNX)."""
        return TanhMeanActor(self)


class TanhMeanActor(nn.Module):
    """The part of the actor that runs on the robot: normalizer, trunk, tanh(mu), scaling to the bounds."""

    def __init__(self, actor: SquashedGaussianActor) -> None:
        super().__init__()
        self.actor = actor

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        a = self.actor
        return a.to_env(torch.tanh(a.mu(a.latent_pi(a.normalizer(obs)))))


class TwinQ(nn.Module):
    """Two independent Q(s, a) MLPs over concat(observation, action): their minimum is the target that
    keeps the max-over-actions bias of one critic from compounding (Fujimoto et al. 2018)."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: Sequence[int] = (256, 256),
                 activation: str = "relu") -> None:
        super().__init__()
        sizes = [obs_dim + act_dim, *hidden]
        self.qf0 = nn.Sequential(*_trunk(sizes, activation), nn.Linear(sizes[-1], 1))
        self.qf1 = nn.Sequential(*_trunk(sizes, activation), nn.Linear(sizes[-1], 1))

    def forward(self, z: torch.Tensor, action: torch.Tensor, frozen: bool = False
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """(Q1, Q2) [batch] for normalized observations and [-1, 1] actions; `frozen`: no gradient reaches
        the critics' weights (the actor's loss), only the action."""
        x = torch.cat([z, action], dim=-1)
        return _forward(self.qf0, x, frozen).squeeze(-1), _forward(self.qf1, x, frozen).squeeze(-1)

    def q1(self, z: torch.Tensor, action: torch.Tensor, frozen: bool = False) -> torch.Tensor:
        """The first critic alone: TD3's actor climbs it."""
        return _forward(self.qf0, torch.cat([z, action], dim=-1), frozen).squeeze(-1)
