"""Schedules shared by the agents: the value-based agents' exploration, every agent's learning rate."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch.optim import Optimizer


def linear_epsilon(start: float, end: float, fraction: float, progress: float) -> float:
    """Epsilon falling linearly from `start` to `end` over the first `fraction` of training, then flat."""
    if fraction <= 0:
        return end
    return start + (end - start) * min(progress / fraction, 1.0)


def learning_rate(base: float, anneal: bool, progress: float) -> float:
    """`base`, or with `anneal` `base` decayed linearly to 0 as `progress` goes from 0 to 1."""
    return base * (1.0 - progress) if anneal else base


def set_learning_rate(optimizer: Optimizer, lr: float) -> None:
    """Give every parameter group of `optimizer` the rate `lr` (the schedule's value for this update)."""
    for group in optimizer.param_groups:
        group["lr"] = lr
