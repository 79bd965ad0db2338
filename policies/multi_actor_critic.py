"""Actors for robots that act alone, with a critic that may see everything (CTDE).

The actor maps one robot's local observation (and its one-hot agent index, so a shared network can
still specialize) to a Gaussian over its actions; with `shared_actor=False` each robot has its own
network. The critic sees the global state (MAPPO) or the robot's own observation (IPPO), plus the
agent index, and predicts the value in normalized units: `value()` de-normalizes with running return
statistics (value normalization, as in the MAPPO paper), so the targets' scale can drift freely.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from policies.actor_critic import mlp
from policies.bounds import register_action_bounds
from policies.normalizer import RunningNormalizer, obs_normalizer


class ValueNormalizer(nn.Module):
    """Running mean and std of value targets (a buffer, so it is checkpointed with the weights)."""

    def __init__(self) -> None:
        super().__init__()
        self.stats = RunningNormalizer(1, clip=float("inf"))

    def update(self, targets: torch.Tensor) -> None:
        self.stats.update(targets.reshape(-1, 1))

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        return self.stats(x.unsqueeze(-1)).squeeze(-1)

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        std = torch.sqrt(self.stats.var + self.stats.eps).to(x.dtype)
        return x * std + self.stats.mean.to(x.dtype)


class MultiActorCritic(nn.Module):
    """Decentralized Gaussian actors over local observations, a critic over `critic_dim` inputs."""

    continuous = True

    def __init__(self, obs_dim: int, critic_dim: int, act_dim: int, num_agents: int,
                 hidden: Sequence[int] = (64, 64), activation: str = "tanh", init_log_std: float = 0.0,
                 normalize_obs: bool = True, shared_actor: bool = True,
                 action_low: Sequence[float] | None = None, action_high: Sequence[float] | None = None) -> None:
        super().__init__()
        self.obs_dim, self.critic_dim, self.act_dim = obs_dim, critic_dim, act_dim
        self.num_agents, self.shared_actor = num_agents, shared_actor
        register_action_bounds(self, act_dim, action_low, action_high)
        self.register_buffer("eye", torch.eye(num_agents))
        self.normalizer = obs_normalizer(obs_dim, normalize_obs)
        self.critic_normalizer = obs_normalizer(critic_dim, normalize_obs)
        n_actors = 1 if shared_actor else num_agents
        actor_in = obs_dim + (num_agents if shared_actor else 0)
        self.actors = nn.ModuleList(mlp([actor_in, *hidden, act_dim], activation, 0.01) for _ in range(n_actors))
        self.critic = mlp([critic_dim + num_agents, *hidden, 1], activation, 1.0)
        self.log_std = nn.Parameter(torch.full((act_dim,), float(init_log_std)))
        self.value_norm = ValueNormalizer()

    def mean(self, obs: torch.Tensor, agent: torch.Tensor) -> torch.Tensor:
        """Action mean in [-1, 1] units for observations [..., obs_dim] of agents `agent` [...] (long)."""
        z = self.normalizer(obs)
        if self.shared_actor:
            return self.actors[0](torch.cat([z, self.eye[agent]], dim=-1))
        outs = torch.stack([actor(z) for actor in self.actors])  # every actor on every row, then pick
        return torch.gather(outs, 0, agent.unsqueeze(0).unsqueeze(-1).expand(1, *agent.shape, self.act_dim))[0]

    def value(self, critic_in: torch.Tensor, agent: torch.Tensor) -> torch.Tensor:
        """V in return units (de-normalized)."""
        return self.value_norm.denormalize(self.normalized_value(critic_in, agent))

    def normalized_value(self, critic_in: torch.Tensor, agent: torch.Tensor) -> torch.Tensor:
        return self.critic(torch.cat([self.critic_normalizer(critic_in), self.eye[agent]], dim=-1)).squeeze(-1)

    def log_prob_entropy(self, obs: torch.Tensor, agent: torch.Tensor,
                         action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean = self.mean(obs, agent)
        std = self.log_std.exp()
        log_prob = (-0.5 * ((action - mean) / std).square() - self.log_std - 0.5 * np.log(2 * np.pi)).sum(-1)
        entropy = (0.5 + 0.5 * np.log(2 * np.pi) + self.log_std).sum().expand_as(log_prob)
        return log_prob, entropy

    @torch.no_grad()
    def act(self, obs: torch.Tensor, agent: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Sampled actions and their log-probabilities."""
        mean = self.mean(obs, agent)
        std = self.log_std.exp()
        action = mean + std * torch.randn_like(mean)
        log_prob = (-0.5 * ((action - mean) / std).square() - self.log_std - 0.5 * np.log(2 * np.pi)).sum(-1)
        return action, log_prob

    def to_env(self, action: torch.Tensor) -> torch.Tensor:
        """[-1, 1] policy units onto the actuator bounds, clipped."""
        mid = (self.action_high + self.action_low) / 2
        half = (self.action_high - self.action_low) / 2
        return torch.clamp(mid + half * action, self.action_low, self.action_high)

    @torch.no_grad()
    def deterministic(self, obs: torch.Tensor, agent: torch.Tensor) -> torch.Tensor:
        return self.mean(obs, agent)

    def export_actor(self, agent: int, obs_size: int | None = None, act_size: int | None = None) -> nn.Module:
        """Robot `agent`'s actor alone: its raw local obs [B, obs_size] -> its env action [B, act_size]. A team
        of unequal robots trains on observations and actions padded to the largest (obs_dim, act_dim); the
        sizes of this robot make the graph pad and cut as the env did (default: the padded sizes)."""
        return RobotActor(self, agent, obs_size, act_size)


class RobotActor(nn.Module):
    """One robot's deterministic controller, cut out of a MultiActorCritic (what gets exported)."""

    def __init__(self, policy: MultiActorCritic, agent: int, obs_size: int | None = None,
                 act_size: int | None = None) -> None:
        super().__init__()
        if not 0 <= agent < policy.num_agents:
            raise ValueError(f"agent index {agent} out of range 0..{policy.num_agents - 1}")
        self.obs_size = policy.obs_dim if obs_size is None else int(obs_size)
        self.act_size = policy.act_dim if act_size is None else int(act_size)
        if not 0 < self.obs_size <= policy.obs_dim or not 0 < self.act_size <= policy.act_dim:
            raise ValueError(f"robot {agent}: obs/action sizes {self.obs_size}/{self.act_size} do not fit the "
                             f"team's padded {policy.obs_dim}/{policy.act_dim}")
        self.policy = policy
        self.agent = agent

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        # The env zero-pads a smaller robot's observation and sends only its own leading action columns.
        if self.obs_size < self.policy.obs_dim:
            obs = F.pad(obs, (0, self.policy.obs_dim - self.obs_size))
        agent = torch.full(obs.shape[:-1], self.agent, dtype=torch.long, device=obs.device)
        return self.policy.to_env(self.policy.mean(obs, agent))[..., : self.act_size]
