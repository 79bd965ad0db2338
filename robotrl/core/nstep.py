"""n-step transitions from a vector env's stream of 1-step ones (Sutton & Barto 7.1; Rainbow).

Per env, the last n steps wait in a queue; a full queue emits its oldest step with the discounted
n-step reward and the bootstrap discount gamma^n. When an episode ends, every queued step is emitted
with the rewards that remain, bootstrapping from the final observation unless the episode terminated
(a truncation is not a terminal state).
"""

from __future__ import annotations

from collections import deque

import numpy as np

from robotrl.core.replay import Transitions


class NStepAccumulator:
    def __init__(self, num_envs: int, n: int, gamma: float) -> None:
        if n < 1:
            raise ValueError(f"n_step must be at least 1, got {n}")
        self.n, self.gamma = n, gamma
        self.queues: list[deque[tuple[np.ndarray, int, float]]] = [deque() for _ in range(num_envs)]

    def clear(self) -> None:
        """Forget queued steps (the envs were reset outside of step)."""
        for q in self.queues:
            q.clear()

    def _emit(self, queue: deque, next_obs: np.ndarray, terminated: bool, out: list) -> None:
        ret = 0.0
        for k, (_, _, r) in enumerate(queue):
            ret += self.gamma**k * r
        obs, action, _ = queue.popleft()
        steps = len(queue) + 1
        out.append((obs, action, ret, next_obs, float(terminated), self.gamma**steps))

    def push(self, obs: np.ndarray, actions: np.ndarray, rewards: np.ndarray, next_obs: np.ndarray,
             terminated: np.ndarray, done: np.ndarray) -> Transitions | None:
        """One vector step; `next_obs` holds the final observation where `done`. Returns what is ready."""
        out: list = []
        for e, queue in enumerate(self.queues):
            queue.append((obs[e], int(actions[e]), float(rewards[e])))
            if done[e]:
                while queue:
                    self._emit(queue, next_obs[e], bool(terminated[e]), out)
            elif len(queue) == self.n:
                self._emit(queue, next_obs[e], False, out)
        if not out:
            return None
        o, a, r, no, t, d = zip(*out, strict=True)
        return Transitions(obs=np.stack(o), actions=np.array(a, dtype=np.int64), rewards=np.array(r, np.float32),
                           next_obs=np.stack(no), terminated=np.array(t, np.float32),
                           discounts=np.array(d, np.float32))
