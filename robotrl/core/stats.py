"""Confidence intervals over a handful of seeds (Student's t, because 3 seeds are not a normal sample)."""

from __future__ import annotations

import math
from collections.abc import Sequence


def _t_cdf(t: float, df: int) -> float:
    """P(T <= t) for Student's t with df degrees of freedom, by Simpson's rule on the density."""
    if t < 0:
        return 1.0 - _t_cdf(-t, df)
    log_norm = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)

    def pdf(x: float) -> float:
        return math.exp(log_norm - (df + 1) / 2 * math.log1p(x * x / df))

    # Substitute x = tan(u) to map [0, t] onto a bounded, smooth integrand over [0, atan(t)].
    upper = math.atan(t)
    n = 2000
    h = upper / n
    total = pdf(0.0) + pdf(math.tan(upper)) / math.cos(upper) ** 2
    for i in range(1, n):
        u = i * h
        total += (4 if i % 2 else 2) * pdf(math.tan(u)) / math.cos(u) ** 2
    return 0.5 + total * h / 3


def t_quantile(p: float, df: int) -> float:
    """The p-quantile of Student's t (p > 0.5), by bisection on the CDF."""
    if not 0.5 < p < 1 or df < 1:
        raise ValueError(f"t_quantile: need 0.5 < p < 1 and df >= 1, got p={p}, df={df}")
    lo, hi = 0.0, 1.0
    while _t_cdf(hi, df) < p:
        hi *= 2
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if _t_cdf(mid, df) < p else (lo, mid)
    return (lo + hi) / 2


def mean_ci95(values: Sequence[float]) -> tuple[float, tuple[float, float]]:
    """Mean and the two-sided 95% t-interval of the mean; one value gives a zero-width interval."""
    n = len(values)
    if n == 0:
        raise ValueError("mean_ci95: no values")
    mean = sum(values) / n
    if n == 1:
        return mean, (mean, mean)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = t_quantile(0.975, n - 1) * std / math.sqrt(n)
    return mean, (mean - half, mean + half)
