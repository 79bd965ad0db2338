"""Q-networks over discrete actions: an MLP or CNN encoder, a plain or dueling head.

The policy keeps the action table (index -> continuous joint action) of a discretized robot as a
buffer, so `export_actor` maps raw observations straight to the greedy bin's torques and the
deployment runner treats a DQN like any continuous policy.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from policies.actor_critic import ACTIVATIONS, mlp
from policies.cnn import NatureCNN
from policies.normalizer import IdentityNormalizer, RunningNormalizer, obs_normalizer


class GreedyActor(nn.Module):
    """Raw observations -> the continuous action of the highest-valued index (what ONNX export runs)."""

    def __init__(self, q_values: nn.Module, action_table: torch.Tensor) -> None:
        super().__init__()
        self.q_values = q_values
        self.register_buffer("action_table", action_table.clone())

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.action_table[self.q_values(obs).argmax(-1)]


def action_table_or_indices(action_table: np.ndarray | None, n_actions: int) -> torch.Tensor:
    """The (n, act_dim) table; an env that is natively discrete gets its index as a 1-d 'action'."""
    if action_table is None:
        return torch.arange(n_actions, dtype=torch.float32)[:, None]
    table = torch.as_tensor(np.asarray(action_table), dtype=torch.float32)
    if table.shape[0] != n_actions:
        raise ValueError(f"action table has {table.shape[0]} rows for {n_actions} actions")
    return table


class QNetwork(nn.Module):
    """Q(s, .) for every discrete action. `pixels` switches to the CNN encoder for (stack, H, W) uint8."""

    def __init__(
        self,
        obs_shape: Sequence[int],
        n_actions: int,
        hidden: Sequence[int] = (64, 64),
        activation: str = "relu",
        dueling: bool = False,
        normalize_obs: bool = False,
        action_table: np.ndarray | None = None,
    ) -> None:
        super().__init__()
        self.obs_shape, self.n_actions, self.dueling = tuple(obs_shape), n_actions, dueling
        self.pixels = len(self.obs_shape) == 3
        if self.pixels:
            self.normalizer: RunningNormalizer | IdentityNormalizer = IdentityNormalizer()
            cnn = NatureCNN(self.obs_shape[0], self.obs_shape[1])
            self.encoder: nn.Module = cnn
            width = cnn.features
        else:
            (obs_dim,) = self.obs_shape
            self.normalizer = obs_normalizer(obs_dim, normalize_obs)
            self.encoder = nn.Sequential(mlp([obs_dim, *hidden], activation, out_gain=np.sqrt(2)),
                                         ACTIVATIONS[activation]()) if hidden else nn.Identity()
            width = hidden[-1] if hidden else obs_dim
        self.head = nn.Linear(width, n_actions)
        # Dueling (Wang et al. 2016): Q = V + A - mean(A), so V learns from every action's update.
        self.value_head = nn.Linear(width, 1) if dueling else None
        self.register_buffer("action_table", action_table_or_indices(action_table, n_actions))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        z = self.encoder(self.normalizer(obs))
        adv = self.head(z)
        if self.value_head is None:
            return adv
        return self.value_head(z) + adv - adv.mean(-1, keepdim=True)

    @torch.no_grad()
    def deterministic(self, obs: torch.Tensor) -> torch.Tensor:
        """The greedy action index."""
        return self.forward(obs).argmax(-1)

    def to_env(self, action: torch.Tensor) -> torch.Tensor:
        """Indices are what the (discretizing) env takes."""
        return action

    def export_actor(self) -> nn.Module:
        """float32 observations [B, ...] -> continuous env actions float32 [B, act_dim]."""
        return GreedyActor(self, self.action_table)
