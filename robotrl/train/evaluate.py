"""Deterministic evaluation over a batch of envs, one episode each (no bias toward short episodes)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

import envs
from robotrl.core.episodes import final_success

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
        ended_by_termination = np.zeros(episodes, dtype=bool)
        info_sums: dict[str, float] = {}
        info_counts: dict[str, int] = {}
        while not finished.all():
            obs, reward, terminated, truncated, infos = env.step(policy(obs))
            live = ~finished
            returns[live] += reward[live]
            lengths[live] += 1
            for key, value in _step_infos(infos, episodes).items():
                mask = infos.get(f"_{key}")
                measured = value[live & mask] if isinstance(mask, np.ndarray) and mask.dtype == bool else value[live]
                info_sums[key] = info_sums.get(key, 0.0) + float(measured.sum())
                info_counts[key] = info_counts.get(key, 0) + len(measured)
            done = (terminated | truncated) & live
            if done.any():
                s = final_success(infos, terminated | truncated)
                if s is not None:
                    success[done] = s[done]
                ended_by_termination |= terminated & live
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
        "terminated": int(ended_by_termination.sum()),
        # Per-step task measurements (a quadruped's velocity error, a reacher's distance), averaged over
        # every step of every episode where the task measured them (Gymnasium's `_key` mask: a step left
        # out is one in the first second after a new velocity command, say).
        "info_means": {k: v / max(info_counts[k], 1) for k, v in sorted(info_sums.items())},
    }


def _step_infos(infos: dict[str, Any], n: int) -> dict[str, np.ndarray]:
    """The numeric per-env arrays a task reports each step (not the autoreset's final_* entries)."""
    return {k: v for k, v in infos.items()
            if not k.startswith(("_", "final_")) and k != "is_success" and isinstance(v, np.ndarray)
            and v.shape == (n,) and v.dtype.kind in "fiu"}


def check_target_measured(target: Any, env_id: str, env_kwargs: dict[str, Any] | None = None,
                          seed: int = 0) -> None:
    """Refuse a target whose metric the env never reports (a mistyped `info_means.<name>`, `success_rate`
    on a task without a success signal), judged on one episode of random actions: otherwise every seed
    trains for its whole budget and the table records "not measured". Single-robot envs only (a team's
    evaluation is its algorithm's own)."""
    if target is None or target.metric in ("return_mean", "length_mean") or envs.is_multi(env_id):
        return
    single = envs.make(env_id, **(env_kwargs or {}))
    space = single.action_space
    single.close()
    space.seed(seed)
    probe = evaluate(lambda obs: np.stack([space.sample() for _ in range(len(obs))]), env_id, 1, seed=seed,
                     env_kwargs=env_kwargs)
    if target.measured(probe) is not None:
        return
    if target.metric == "success_rate":
        raise ValueError(f"target success_rate: {env_id} reports no is_success at the end of an episode; "
                         f"choose return_mean, length_mean or info_means.<name> "
                         f"({', '.join(probe['info_means']) or 'it reports no measurements'})")
    name = target.metric.split(".", 1)[1]
    reported = ", ".join(probe["info_means"]) or "none"
    raise ValueError(f"target {target.metric}: {env_id} reports no {name!r} (its measurements: {reported})")
