"""Actor-critic networks: separate actor and critic MLPs, orthogonal init.

The Gaussian head has a state-independent log-std (as in PPO's paper and SB3); the categorical head
serves Discrete action spaces. Observation normalization is part of the module.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn
from torch.distributions import Categorical, Normal

from policies.activations import ACTIVATIONS
from policies.bounds import fold_bounds_into_linear, register_action_bounds, scale_to_bounds
from policies.normalizer import obs_normalizer

__all__ = ["ACTIVATIONS", "ActorCritic", "DeterministicActor", "FoldedGaussianActor", "mlp"]

LOG_2PI = float(np.log(2 * np.pi))


def mlp(sizes: Sequence[int], activation: str, out_gain: float) -> nn.Sequential:
    """Linear layers with orthogonal weights (gain sqrt(2) hidden, `out_gain` last) and zero biases."""
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        last = i == len(sizes) - 2
        linear = nn.Linear(sizes[i], sizes[i + 1])
        nn.init.orthogonal_(linear.weight, out_gain if last else np.sqrt(2))
        nn.init.zeros_(linear.bias)
        layers.append(linear)
        if not last:
            layers.append(ACTIVATIONS[activation]())
    return nn.Sequential(*layers)


class ActorCritic(nn.Module):
    """pi(a|s) and V(s). `continuous` picks a Gaussian (Box actions) or categorical (Discrete) head."""

    action_low: torch.Tensor
    action_high: torch.Tensor

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        continuous: bool = True,
        hidden: Sequence[int] = (64, 64),
        activation: str = "tanh",
        init_log_std: float = 0.0,
        normalize_obs: bool = True,
        critic_obs_dim: int | None = None,
        action_low: Sequence[float] | None = None,
        action_high: Sequence[float] | None = None,
        action_table: Sequence[Sequence[float]] | np.ndarray | None = None,
    ) -> None:
        """`action_table` (categorical only): row i is the continuous action of index i on a discretized
        robot, so that the exported actor drives the robot without the discretizing wrapper."""
        super().__init__()
        self.obs_dim, self.act_dim, self.continuous = obs_dim, act_dim, continuous
        # The Gaussian acts in [-1, 1] units; to_env maps them onto the actuator bounds.
        register_action_bounds(self, act_dim, action_low, action_high)
        self.normalizer = obs_normalizer(obs_dim, normalize_obs)
        self.actor = mlp([obs_dim, *hidden, act_dim], activation, out_gain=0.01)
        self.critic = mlp([critic_obs_dim or obs_dim, *hidden, 1], activation, out_gain=1.0)
        if continuous:
            self.log_std = nn.Parameter(torch.full((act_dim,), float(init_log_std)))
        elif action_table is not None:
            table = torch.as_tensor(np.asarray(action_table), dtype=torch.float32)
            if table.ndim != 2 or table.shape[0] != act_dim:
                raise ValueError(f"action_table: expected {act_dim} rows of actions, got shape {tuple(table.shape)}")
            self.register_buffer("action_table", table)

    def distribution(self, obs: torch.Tensor) -> Normal | Categorical:
        out = self.actor(self.normalizer(obs))
        if self.continuous:
            return Normal(out, self.log_std.exp().expand_as(out), validate_args=False)
        return Categorical(logits=out, validate_args=False)

    def value(self, obs: torch.Tensor) -> torch.Tensor:
        return self.critic(self.normalizer(obs)).squeeze(-1)

    def log_prob(self, dist: Normal | Categorical, action: torch.Tensor) -> torch.Tensor:
        lp = dist.log_prob(action)
        return lp.sum(-1) if self.continuous else lp

    def entropy(self, dist: Normal | Categorical) -> torch.Tensor:
        ent = dist.entropy()
        return ent.sum(-1) if self.continuous else ent

    def evaluate_actions(self, obs: torch.Tensor, actions: torch.Tensor, normalized: bool = False
                         ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """log pi(a|s), entropy and V(s) with gradients, in one pass: the update's hot path normalizes once
        and builds no distribution objects (they cost more than these small networks). `normalized`:
        `obs` already went through the normalizer (an update normalizes the whole rollout once)."""
        z = obs if normalized else self.normalizer(obs)
        out = self.actor(z)
        value = self.critic(z).squeeze(-1)
        if self.continuous:
            log_std_sum = self.log_std.sum()
            log_prob = ((actions - out) * torch.exp(-self.log_std)).square().sum(-1).mul(-0.5) \
                - (log_std_sum + 0.5 * self.act_dim * LOG_2PI)
            entropy = (log_std_sum + self.act_dim * (0.5 + 0.5 * LOG_2PI)).expand(out.shape[0])
            return log_prob, entropy, value
        logp = torch.log_softmax(out, -1)
        log_prob = logp.gather(-1, actions.long().unsqueeze(-1)).squeeze(-1)
        entropy = -(logp.exp() * logp).sum(-1)
        return log_prob, entropy, value

    @torch.no_grad()
    def act(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Sample actions for a batch: (action, log_prob, value). Runs at every env step, so the layers
        are called through `forward` directly: nn.Module's call machinery costs more than a 64-unit layer
        on a handful of envs."""
        z = self.normalizer.forward(obs)
        out = _run_layers(self.actor, z)
        value = _run_layers(self.critic, z).squeeze(-1)
        if self.continuous:
            noise = torch.randn_like(out)
            action = out + self.log_std.exp() * noise
            # Closed-form Gaussian log-density of the sample, from its noise ((a - mu) / std = noise):
            # torch.distributions costs more than the MLP at this size.
            log_prob = noise.square().sum(-1).mul_(-0.5).sub_(self.log_std.sum() + 0.5 * self.act_dim * LOG_2PI)
            return action, log_prob, value
        dist = Categorical(logits=out)
        action = dist.sample()
        return action, dist.log_prob(action), value

    def to_env(self, action: torch.Tensor) -> torch.Tensor:
        """Policy units to the env's: rescale [-1, 1] onto [low, high] and clip (continuous only)."""
        if not self.continuous:
            return action
        return scale_to_bounds(self, action, self.action_low, self.action_high)

    def export_actor(self) -> nn.Module:
        """Raw observations -> env actions, deterministic, with normalization and scaling inside (for ONNX)."""
        return DeterministicActor(self)

    @torch.no_grad()
    def deterministic(self, obs: torch.Tensor) -> torch.Tensor:
        """The mean action (Gaussian) or the most likely one (categorical): what evaluation and export run."""
        out = self.actor(self.normalizer(obs))
        return out if self.continuous else out.argmax(-1)


def _run_layers(seq: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    for layer in seq:
        x = layer.forward(x)
    return x


class DeterministicActor(nn.Module):
    """The part of an ActorCritic that runs on the robot: normalizer, actor MLP, mean or argmax, to_env.

    Discrete actions come out as the chosen row of the action table on a discretized robot (its continuous
    action: the robot runs without the wrapper), else as the chosen index in a float32 column, so every
    exported policy has one output type.
    """

    def __init__(self, policy: ActorCritic) -> None:
        super().__init__()
        self.policy = policy

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        p = self.policy
        out = p.actor(p.normalizer(obs))
        if not p.continuous:
            if hasattr(p, "action_table"):
                return p.action_table[out.argmax(-1)]
            return out.argmax(-1, keepdim=True).to(torch.float32)
        return p.to_env(out)

    def export_graph(self) -> nn.Module:
        """What policies.export.to_onnx traces in place of this module: for a Gaussian policy the same map
        with the rescale onto the bounds folded into the last Linear layer (FoldedGaussianActor), for a
        categorical one this module itself (an argmax has no affine to fold)."""
        return FoldedGaussianActor(self.policy) if self.policy.continuous else self


class FoldedGaussianActor(nn.Module):
    """A Gaussian ActorCritic's deterministic actor with mid + half * mean folded into the last Linear
    layer: normalizer, hidden layers, folded output layer, clamp to the bounds. Two fewer graph ops on the
    robot's 1 kHz path (issue 19); built from copies at export, so the training model never changes. The
    normalizer stays as it is: its clip sits between it and the first layer, so it cannot be folded in."""

    action_low: torch.Tensor
    action_high: torch.Tensor

    def __init__(self, policy: ActorCritic) -> None:
        super().__init__()
        *hidden, last = copy.deepcopy(policy.actor)
        if not isinstance(last, nn.Linear):
            raise TypeError(f"the actor ends in {type(last).__name__}: only a final Linear layer's output is "
                            "the mean in [-1, 1] units that the bounds rescale can be folded into")
        self.normalizer = copy.deepcopy(policy.normalizer)
        self.hidden = nn.Sequential(*hidden)
        self.out = fold_bounds_into_linear(last, policy.action_low, policy.action_high)
        self.register_buffer("action_low", policy.action_low.detach().clone())
        self.register_buffer("action_high", policy.action_high.detach().clone())

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.clamp(self.out(self.hidden(self.normalizer(obs))), self.action_low, self.action_high)
