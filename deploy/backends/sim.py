"""Software in the loop: a simulated robot stepped in lock-step with the control loop.

The env is handed in by the caller (`robotrl deploy` builds a MuJoCo robot from envs), so deploy
itself never imports a simulator. Each read advances the simulation by one control period with the
last command and returns the new observation; episodes restart when the env says they ended.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from deploy.backends.base import Reading
from deploy.metadata import RobotSpec
from deploy.timing import now_ns


class SimBackend:
    """Wraps any env with Gymnasium's reset/step signatures and Box spaces."""

    name = "sim"

    def __init__(self, env: Any, seed: int = 0) -> None:
        self.env = env
        self._spec = RobotSpec.from_spaces(env.observation_space, env.action_space)
        obs, _ = env.reset(seed=seed)
        self._obs = np.asarray(obs, dtype=np.float32).reshape(-1).copy()
        self._command = np.zeros(self._spec.act_dim, dtype=np.float32)
        self._started = False
        self._return = 0.0
        self._length = 0
        self.returns: list[float] = []
        self.lengths: list[int] = []
        self.successes: list[bool] = []

    def spec(self) -> RobotSpec:
        return self._spec

    def read(self) -> Reading:
        if self._started:
            obs, reward, terminated, truncated, info = self.env.step(self._command.copy())
            self._return += float(reward)
            self._length += 1
            if terminated or truncated:
                self.returns.append(self._return)
                self.lengths.append(self._length)
                if "is_success" in info:
                    self.successes.append(bool(info["is_success"]))
                self._return, self._length = 0.0, 0
                obs, _ = self.env.reset()
            self._obs[:] = np.asarray(obs, dtype=np.float32).reshape(-1)
        self._started = True
        return Reading(self._obs, now_ns())

    def write(self, action: np.ndarray) -> None:
        self._command[:] = action

    def summary(self) -> dict[str, Any]:
        n = len(self.returns)
        return {
            "episodes": n,
            "return_mean": float(np.mean(self.returns)) if n else None,
            "return_std": float(np.std(self.returns)) if n else None,
            "length_mean": float(np.mean(self.lengths)) if n else None,
            "success_rate": float(np.mean(self.successes)) if self.successes else None,
        }

    def close(self) -> None:
        self.env.close()
