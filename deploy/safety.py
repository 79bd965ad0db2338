"""What stands between the policy and the actuators: bounds, rate limits, and the safe action.

Every fault (a NaN or Inf in an observation or action, a stale observation, a failed read) is
answered with the safe action and counted; the loop keeps its rate and the robot gets a defined
command instead of a crash loop.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

SAFE_ACTIONS = ("zero", "hold")
FAULTS = ("bad_observation", "bad_action", "stale_observation", "read_error", "no_observation")


@dataclass
class SafetyConfig:
    safe_action: str = "hold"
    """"zero": command zeros (clamped into the bounds); "hold": repeat the last action that was sent."""
    max_rate: float | None = None
    """Largest change of an action component per second (None: no rate limit)."""
    watchdog_s: float = 0.05
    """An observation older than this is stale and answered with the safe action."""

    def __post_init__(self) -> None:
        if self.safe_action not in SAFE_ACTIONS:
            raise ValueError(f"safe action {self.safe_action!r}: expected one of {SAFE_ACTIONS}")
        if self.max_rate is not None and not self.max_rate > 0:
            raise ValueError(f"max rate {self.max_rate}: expected a positive number (units per second)")
        if not self.watchdog_s > 0:
            raise ValueError(f"watchdog {self.watchdog_s}: expected a positive number of seconds")


@dataclass
class Safety:
    """Clamps and rate-limits actions; produces the safe action; counts faults by kind."""

    low: np.ndarray
    high: np.ndarray
    period_s: float
    config: SafetyConfig = field(default_factory=SafetyConfig)

    def __post_init__(self) -> None:
        self.low = np.asarray(self.low, dtype=np.float32)
        self.high = np.asarray(self.high, dtype=np.float32)
        self.last = np.clip(np.zeros_like(self.low), self.low, self.high)
        self._zero = self.last.copy()
        self._out = self.last.copy()
        self._step = (np.float32(self.config.max_rate * self.period_s)
                      if self.config.max_rate is not None else None)
        self.counts = dict.fromkeys(FAULTS, 0)
        self.total = 0

    @staticmethod
    def finite(x: np.ndarray) -> bool:
        return bool(np.isfinite(x).all())

    def filter(self, action: np.ndarray) -> np.ndarray:
        """The command to send for a policy action: non-finite -> safe; else clamp and rate-limit."""
        if not self.finite(action):
            return self.safe("bad_action")
        out = self._out
        np.clip(action, self.low, self.high, out=out)
        if self._step is not None:
            np.clip(out, self.last - self._step, self.last + self._step, out=out)
        self.last[:] = out
        return out

    def hold(self) -> np.ndarray:
        """The last command again (no new observation yet, but not stale)."""
        self._out[:] = self.last
        return self._out

    def safe(self, fault: str | None = None) -> np.ndarray:
        """The safe action, counting `fault` when given. Rate limits do not apply: safety first."""
        if fault is not None:
            self.counts[fault] += 1
            self.total += 1
        if self.config.safe_action == "zero":
            self.last[:] = self._zero
        self._out[:] = self.last
        return self._out
