"""The interface between the control loop and a robot."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from deploy.metadata import RobotSpec


class BackendError(Exception):
    """A failed read or write; the loop answers it with the safe action and keeps its rate."""


class RobotRefused(BackendError):
    """The robot said something the runner must not run with (a malformed SPEC after a restart, say):
    the loop ends on the safe command instead of answering tick by tick."""


@dataclass
class Reading:
    """The newest observation, the runner-clock time it was read (perf_counter_ns) and, where the
    backend knows it, the time it arrived (the kernel's receive timestamp, on the same clock) and a time it
    certainly arrived after (a cheap lower bound that lets the runner skip the timestamp's conversion)."""

    obs: np.ndarray
    received_ns: int
    arrived_ns: int | None = None
    arrived_after_ns: int | None = None


class Backend(Protocol):
    name: str

    def spec(self) -> RobotSpec:
        """The robot's sizes and actuator bounds, checked against the policy before the loop starts."""
        ...

    def read(self) -> Reading | None:
        """The newest observation since the last read, or None when nothing new came."""
        ...

    def write(self, action: np.ndarray) -> None:
        """Send a command."""
        ...

    def summary(self) -> dict[str, Any]:
        """Counters and results of the backend, for the run summary."""
        ...

    def close(self) -> None:
        ...
