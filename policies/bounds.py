"""A policy's action bounds: the buffers it keeps them in, and the map from its [-1, 1] units onto them."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from policies.derived import cached


def register_action_bounds(module: nn.Module, act_dim: int, low: Sequence[float] | None,
                           high: Sequence[float] | None) -> None:
    """float32 `action_low` / `action_high` buffers on `module` (default [-1, 1] per action dimension): saved
    with the weights and inputs of an exported graph."""
    module.register_buffer("action_low", torch.as_tensor(low if low is not None else [-1.0] * act_dim,
                                                         dtype=torch.float32))
    module.register_buffer("action_high", torch.as_tensor(high if high is not None else [1.0] * act_dim,
                                                          dtype=torch.float32))


def scale_to_bounds(owner: nn.Module, action: torch.Tensor, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    """[-1, 1] policy units onto [low, high], clipped; the centre and half-range of the bounds are cached on
    `owner` until the bounds change (policies.derived)."""
    mid, half = cached(owner, "action_affine", (low, high), lambda: ((high + low) / 2, (high - low) / 2))
    return torch.clamp(torch.addcmul(mid, half, action), low, high)
