"""A3C hyperparameters: the `a3c:` section of a run config. Agent: robotrl/agents/a3c.py."""

from __future__ import annotations

from dataclasses import dataclass

from robotrl.hyper import a2c
from robotrl.hyper.checks import positive


@dataclass(frozen=True)
class Hyper(a2c.Hyper):
    workers: int = 2
    """Worker processes; each steps its own env.num_envs envs."""
    steps_per_collect: int = 10_000
    """Env steps (all workers together) between the trainer's iterations (logs, checkpoints, evals)."""

    def validate(self) -> None:
        super().validate()
        positive(self, "workers", "steps_per_collect")
