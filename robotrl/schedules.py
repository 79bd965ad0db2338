"""Exploration schedules shared by the value-based agents."""

from __future__ import annotations


def linear_epsilon(start: float, end: float, fraction: float, progress: float) -> float:
    """Epsilon falling linearly from `start` to `end` over the first `fraction` of training, then flat."""
    if fraction <= 0:
        return end
    return start + (end - start) * min(progress / fraction, 1.0)
