"""Running mean and variance of observations, kept inside the policy module.

Living in the module (as buffers) means the statistics are saved with the weights and baked into an
exported ONNX graph: the robot never sees raw-vs-normalized mismatches.
"""

from __future__ import annotations

import torch
from torch import nn

from policies.derived import cached


class RunningNormalizer(nn.Module):
    """(x - mean) / sqrt(var + eps), clipped; statistics merged batch by batch (Chan et al.)."""

    def __init__(self, size: int, clip: float = 10.0, eps: float = 1e-8) -> None:
        super().__init__()
        self.clip = clip
        self.eps = eps
        self.register_buffer("mean", torch.zeros(size, dtype=torch.float64))
        self.register_buffer("var", torch.ones(size, dtype=torch.float64))
        # Start with a tiny pseudo-count so the first batch dominates, as SB3's RunningMeanStd does.
        self.register_buffer("count", torch.tensor(1e-4, dtype=torch.float64))

    @torch.no_grad()
    def update(self, x: torch.Tensor) -> None:
        # The statistics stay where the module lives, whichever device the batch comes from.
        x = x.reshape(-1, self.mean.shape[0]).to(self.mean.device, torch.float64)
        batch_mean = x.mean(0)
        batch_var = x.var(0, unbiased=False)
        n = x.shape[0]
        total = self.count + n
        delta = batch_mean - self.mean
        m2 = self.var * self.count + batch_var * n + delta.square() * self.count * n / total
        self.mean.copy_(self.mean + delta * n / total)
        self.var.copy_(m2 / total)
        self.count.copy_(total)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean, std = self._mean_std(x.dtype)
        return torch.clamp((x - mean) / std, -self.clip, self.clip)

    def _mean_std(self, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and std in the input's dtype, cached until the statistics change (policies.derived)."""
        return cached(self, "mean_std", (self.mean, self.var),
                      lambda: (self.mean.to(dtype), torch.sqrt(self.var + self.eps).to(dtype)), extra=dtype)


def obs_normalizer(dim: int, enabled: bool) -> RunningNormalizer | IdentityNormalizer:
    """A RunningNormalizer over `dim` features, or the identity when normalization is off."""
    return RunningNormalizer(dim) if enabled else IdentityNormalizer()


class IdentityNormalizer(nn.Module):
    """Stand-in when normalization is off, so the policy's forward keeps one shape."""

    def update(self, x: torch.Tensor) -> None:
        del x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x
