"""Every algorithm's hyperparameter schema: one frozen, documented dataclass per algorithm, and the
registry of algorithm names.

This sits below `robotrl.config`, which validates a run's `<algo>:` section against these schemas when the
config loads; the agents (above the config) import their schema from here. So a config never imports an
agent, and a bad hyperparameter fails before anything trains.
"""

from __future__ import annotations

from robotrl.hyper import a2c, a3c, dqn, mappo, ppo, qlearning, reinforce, sac

HYPER: dict[str, type] = {
    "ppo": ppo.Hyper,
    "a2c": a2c.Hyper,
    "a3c": a3c.Hyper,
    "reinforce": reinforce.Hyper,
    "dqn": dqn.Hyper,
    "qlearning": qlearning.Hyper,
    "mappo": mappo.Hyper,
    "sac": sac.Hyper,
}
"""Algorithm name (a run config's `algo:`) -> its hyperparameter dataclass."""

ALGORITHMS: tuple[str, ...] = tuple(HYPER)
