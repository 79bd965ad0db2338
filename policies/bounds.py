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


def fold_bounds_into_linear(linear: nn.Linear, low: torch.Tensor, high: torch.Tensor) -> nn.Linear:
    """A new Linear layer computing mid + half * linear(x), scale_to_bounds before its clamp, as one matrix
    product: an exported graph then ends in Gemm, Max, Min instead of Gemm, Mul, Add, Max, Min. Only valid
    where `linear`'s output is the [-1, 1] action itself (no nonlinearity such as a tanh in between).
    Folded in float64 and rounded once, so it differs from the unfolded layer by float32 rounding only."""
    mid, half = (high.double() + low.double()) / 2, (high.double() - low.double()) / 2
    weight = linear.weight.detach().double()
    bias = linear.bias.detach().double() if linear.bias is not None else torch.zeros_like(mid)
    folded = nn.Linear(linear.in_features, linear.out_features, device=weight.device, dtype=linear.weight.dtype)
    with torch.no_grad():
        folded.weight.copy_(half[:, None] * weight)
        folded.bias.copy_(half * bias + mid)
    return folded.requires_grad_(False)
