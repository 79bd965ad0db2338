"""A running mean of a network's weights over the updates of a run's last stretch (stochastic weight
averaging; Izmailov et al. 2018, for deep RL Nikishin et al. 2018).

A pixel DQN's greedy policy flips between balancing and drifting from one checkpoint to the next even
with its learning rate annealed: single iterates sit on the noisy edge of a good region. Their mean sits
inside it. Measured here (docs/value-based.md): the mean of three 25k-step-apart checkpoints of the
shipped pixel run balanced in 93 of 100 episodes, each of them alone in 67-88.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn


class WeightAverage:
    """The uniform mean of every state of `net` passed to `update` (its buffers follow the latest)."""

    def __init__(self) -> None:
        self.network: nn.Module | None = None
        self.count = 0

    @torch.no_grad()
    def update(self, net: nn.Module) -> None:
        if self.network is None:
            self.network = copy.deepcopy(net).requires_grad_(False)
        else:
            weight = 1.0 / (self.count + 1)
            for p_avg, p in zip(self.network.parameters(), net.parameters(), strict=True):
                p_avg.lerp_(p, weight)
            # Buffers are statistics, not weights (an observation normalizer frozen after warm-up).
            for b_avg, b in zip(self.network.buffers(), net.buffers(), strict=True):
                b_avg.copy_(b)
        self.count += 1

    def state_dict(self) -> dict[str, Any]:
        return {"count": self.count, "network": None if self.network is None else self.network.state_dict()}

    def load_state_dict(self, state: dict[str, Any], like: nn.Module) -> None:
        """Restore the mean; `like` is a network of the same architecture to copy the structure from."""
        self.count = int(state["count"])
        self.network = None
        if state["network"] is not None:
            self.network = copy.deepcopy(like).requires_grad_(False)
            self.network.load_state_dict(state["network"])
