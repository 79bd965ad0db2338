"""The agents, one file each. Each module defines its `Agent` (robotrl.agents.protocol.Agent) and the
`ALGORITHM` entry through which the trainer, eval, export and the scale-out reach it; its hyperparameter
schema lives below the config, in robotrl.hyper."""

from __future__ import annotations

from robotrl.agents import a2c, a3c, dqn, mappo, ppo, qlearning, reinforce, sac
from robotrl.agents.protocol import Algorithm
from robotrl.hyper import HYPER

ALGORITHMS: dict[str, Algorithm] = {
    m.ALGORITHM.name: m.ALGORITHM for m in (ppo, a2c, a3c, reinforce, dqn, qlearning, mappo, sac)
}
"""A run config's `algo:` -> its registry entry."""

if set(ALGORITHMS) != set(HYPER):
    # A config would validate hyperparameters for an algorithm nothing can train, or the reverse.
    raise ImportError(f"robotrl.agents: no agent module's ALGORITHM for {sorted(set(HYPER) - set(ALGORITHMS))}, "
                      f"no robotrl.hyper.HYPER schema for {sorted(set(ALGORITHMS) - set(HYPER))}")


def algorithm(name: str) -> Algorithm:
    """The registry entry of `name`, or a one-line error listing the known ones."""
    if name not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {name!r} (expected one of: {', '.join(ALGORITHMS)})")
    return ALGORITHMS[name]
