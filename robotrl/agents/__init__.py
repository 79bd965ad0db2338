"""The agents, one file each. Each module defines `Hyper` (its documented hyperparameters) and `Agent`."""

from __future__ import annotations

import importlib
from types import ModuleType

ALGORITHMS: dict[str, str] = {
    "ppo": "robotrl.agents.ppo",
    "a2c": "robotrl.agents.a2c",
    "a3c": "robotrl.agents.a3c",
    "reinforce": "robotrl.agents.reinforce",
    "dqn": "robotrl.agents.dqn",
    "qlearning": "robotrl.agents.qlearning",
    "mappo": "robotrl.agents.mappo",
}


def agent_module(algo: str) -> ModuleType:
    if algo not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {algo!r} (expected one of: {', '.join(ALGORITHMS)})")
    return importlib.import_module(ALGORITHMS[algo])


def hyper_class(algo: str) -> type:
    return agent_module(algo).Hyper
