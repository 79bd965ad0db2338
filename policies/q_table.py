"""A tabular Q-function as a torch module, so that it is checkpointed, resumed, evaluated and exported
exactly like a network. The observation grid and the action table live inside it as buffers."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from policies.q_network import GreedyActor, action_table_or_indices


class GridCells(nn.Module):
    """Raw observation -> grid cell index, the same arithmetic as envs.wrappers.ObservationGrid."""

    def __init__(self, bins: Sequence[int], low: Sequence[float], high: Sequence[float]) -> None:
        super().__init__()
        self.register_buffer("bins", torch.as_tensor(bins, dtype=torch.int64))
        self.register_buffer("low", torch.as_tensor(low, dtype=torch.float64))
        self.register_buffer("high", torch.as_tensor(high, dtype=torch.float64))
        strides = np.cumprod([1, *list(bins)[::-1]])[:-1][::-1].copy()
        self.register_buffer("strides", torch.as_tensor(strides, dtype=torch.int64))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        frac = (obs.to(torch.float64) - self.low) / (self.high - self.low)
        cell = torch.minimum(torch.clamp(torch.floor(frac * self.bins), min=0).to(torch.int64), self.bins - 1)
        return (cell * self.strides).sum(-1)


class TableQValues(nn.Module):
    """Raw observations -> the table's Q row of their cell (the part GreedyActor needs)."""

    def __init__(self, cells: GridCells, table: torch.Tensor) -> None:
        super().__init__()
        self.cells, self.table = cells, table

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.table[self.cells(obs)].to(torch.float32)


class QTable(nn.Module):
    """Q[state, action], zero-initialized. Its inputs are the grid cells the discretizing env emits."""

    q: torch.Tensor
    """[n_states, n_actions] float64, a buffer (saved with the module, shared with the learner's numpy view)."""

    def __init__(self, n_states: int, n_actions: int, grid: dict[str, Sequence[float]] | None = None,
                 action_table: np.ndarray | None = None) -> None:
        super().__init__()
        self.n_states, self.n_actions = n_states, n_actions
        self.register_buffer("q", torch.zeros(n_states, n_actions, dtype=torch.float64))
        self.cells = GridCells(grid["bins"], grid["low"], grid["high"]) if grid is not None else None
        self.register_buffer("action_table", action_table_or_indices(action_table, n_actions))

    def forward(self, states: torch.Tensor) -> torch.Tensor:
        return self.q[states.to(torch.int64).reshape(-1)]

    @torch.no_grad()
    def deterministic(self, states: torch.Tensor) -> torch.Tensor:
        """Greedy index; ties go to the lowest index (torch.argmax's rule)."""
        return self.forward(states).argmax(-1)

    def to_env(self, action: torch.Tensor) -> torch.Tensor:
        return action

    def export_actor(self) -> nn.Module:
        """Raw (not discretized) float32 observations [B, obs_dim] -> continuous actions [B, act_dim]."""
        if self.cells is None:
            raise ValueError("this Q-table was trained without an observation grid; nothing maps raw observations "
                             "to its states")
        return GreedyActor(TableQValues(self.cells, self.q), self.action_table)
