"""Range checks for the `validate()` of every config and hyperparameter dataclass.

Each failure is a ValueError whose message starts with the field's name and a colon; `robotrl.config.build`
turns that into the key's full path (`ppo.learning_rate: expected a positive number, got 0.0`), so a bad
value fails when the config loads, named where the user wrote it, instead of deep inside a run.
"""

from __future__ import annotations

from typing import Any


def _kind(value: Any) -> str:
    return "integer" if isinstance(value, int) else "number"


def positive(obj: Any, *names: str) -> None:
    """Each named field is > 0 (a field that is None, i.e. switched off, passes)."""
    for name in names:
        value = getattr(obj, name)
        if value is not None and not value > 0:
            raise ValueError(f"{name}: expected a positive {_kind(value)}, got {value}")


def non_negative(obj: Any, *names: str) -> None:
    """Each named field is >= 0 (None passes)."""
    for name in names:
        value = getattr(obj, name)
        if value is not None and not value >= 0:
            raise ValueError(f"{name}: expected a non-negative {_kind(value)}, got {value}")


def open_unit(obj: Any, *names: str) -> None:
    """Each named field is in (0, 1): a decay rate that keeps some of the past and takes some of the new."""
    for name in names:
        value = getattr(obj, name)
        if not 0 < value < 1:
            raise ValueError(f"{name}: expected a number in (0, 1), got {value}")


def unit(obj: Any, *names: str) -> None:
    """Each named field is a probability in [0, 1]."""
    for name in names:
        value = getattr(obj, name)
        if not 0 <= value <= 1:
            raise ValueError(f"{name}: expected a number in [0, 1], got {value}")


def fits_in_buffer(obj: Any) -> None:
    """A replay batch is drawn from the stored transitions: one larger than the buffer never is, and the
    agent would collect without ever learning."""
    if obj.batch_size > obj.buffer_size:
        raise ValueError(f"batch_size: expected at most buffer_size ({obj.buffer_size}), got {obj.batch_size}")


def fraction(obj: Any, *names: str) -> None:
    """Each named field is a fraction of a run in (0, 1]: a schedule over none of it would divide by zero."""
    for name in names:
        value = getattr(obj, name)
        if not 0 < value <= 1:
            raise ValueError(f"{name}: expected a number in (0, 1], got {value}")
