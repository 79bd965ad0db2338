"""Schedules shared by the agents: the value-based agents' exploration, every agent's learning rate."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from torch.optim import Optimizer


class Exploration(Protocol):
    """The epsilon-greedy fields of a value-based agent's hyperparameters (DQN's, tabular Q-learning's)."""

    @property
    def exploration_initial_eps(self) -> float: ...
    @property
    def exploration_final_eps(self) -> float: ...
    @property
    def exploration_fraction(self) -> float: ...


def exploration_epsilon(hp: Exploration, progress: float) -> float:
    """`hp`'s epsilon at `progress` (0 to 1) of the run: `exploration_initial_eps` falling linearly to
    `exploration_final_eps` over the first `exploration_fraction` of the run, then flat."""
    start, end, fraction = hp.exploration_initial_eps, hp.exploration_final_eps, hp.exploration_fraction
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
