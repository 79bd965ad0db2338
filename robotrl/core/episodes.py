"""Episode bookkeeping over a vector env: returns, lengths and success of finished episodes."""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np


def final_success(infos: dict[str, Any], done: np.ndarray) -> np.ndarray | None:
    """`is_success` of each env whose episode just ended (SAME_STEP autoreset layout), or None."""
    final = infos.get("final_info")
    if isinstance(final, dict) and "is_success" in final:
        return np.asarray(final["is_success"], dtype=bool)
    if "is_success" in infos and not done.any():
        return np.asarray(infos["is_success"], dtype=bool)
    return None


class EpisodeStats:
    """Accumulates raw (unscaled) rewards per env; keeps the most recent finished episodes."""

    def __init__(self, num_envs: int, window: int = 100) -> None:
        self.returns = np.zeros(num_envs)
        self.lengths = np.zeros(num_envs, dtype=np.int64)
        self.recent_returns: deque[float] = deque(maxlen=window)
        self.recent_lengths: deque[int] = deque(maxlen=window)
        self.recent_success: deque[float] = deque(maxlen=window)
        self.episodes = 0

    def add(self, rewards: np.ndarray, done: np.ndarray, infos: dict[str, Any]) -> None:
        self.returns += rewards
        self.lengths += 1
        if not done.any():
            return
        success = final_success(infos, done)
        for i in np.flatnonzero(done):
            self.record(float(self.returns[i]), int(self.lengths[i]),
                        None if success is None else float(success[i]))
        self.returns[done] = 0.0
        self.lengths[done] = 0

    def record(self, ret: float, length: int, success: float | None) -> None:
        """One finished episode (also how episodes that ran in another process are reported)."""
        self.recent_returns.append(ret)
        self.recent_lengths.append(length)
        if success is not None:
            self.recent_success.append(success)
        self.episodes += 1

    def summary(self) -> dict[str, float]:
        if not self.recent_returns:
            return {}
        out = {"return_mean": float(np.mean(self.recent_returns)),
               "length_mean": float(np.mean(self.recent_lengths))}
        if self.recent_success:
            out["success_rate"] = float(np.mean(self.recent_success))
        return out
