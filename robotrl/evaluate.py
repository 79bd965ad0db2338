"""Deterministic evaluation over a batch of envs, one episode each (no bias toward short episodes)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

import envs
from robotrl.episodes import final_success

PolicyFn = Callable[[np.ndarray], np.ndarray]


def evaluate(policy: PolicyFn, env_id: str, episodes: int, seed: int = 10_000,
             env_kwargs: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run `episodes` episodes in parallel; returns the JSON fields of `robotrl eval --json`."""
    env = envs.make_vec(env_id, episodes, **(env_kwargs or {}))
    try:
        obs, _ = env.reset(seed=seed)
        returns = np.zeros(episodes)
        lengths = np.zeros(episodes, dtype=np.int64)
        finished = np.zeros(episodes, dtype=bool)
        success = np.full(episodes, np.nan)
        while not finished.all():
            obs, reward, terminated, truncated, infos = env.step(policy(obs))
            live = ~finished
            returns[live] += reward[live]
            lengths[live] += 1
            done = (terminated | truncated) & live
            if done.any():
                s = final_success(infos, terminated | truncated)
                if s is not None:
                    success[done] = s[done]
                finished |= done
    finally:
        env.close()
    has_success = not np.isnan(success).all()
    return {
        "episodes": episodes,
        "return_mean": float(returns.mean()),
        "return_std": float(returns.std()),
        "length_mean": float(lengths.mean()),
        "success_rate": float(np.nanmean(success)) if has_success else None,
    }
