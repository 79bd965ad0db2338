"""The interface between the control loop and a robot."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from deploy.metadata import RobotSpec


class BackendError(Exception):
    """A failed read or write; the loop answers it with the safe action and keeps its rate."""


@dataclass
class Reading:
    """The newest observation and the runner-clock time it was received (perf_counter_ns)."""

    obs: np.ndarray
    received_ns: int


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
