"""Multi-robot env creation by id: ours (`robotrl/MultiPush-v0`) and MaMuJoCo's (`mamujoco/<Robot>-<split>`).

`make_multi` gives a PettingZoo ParallelEnv; `make_multi_batch` gives the batched training interface
(envs.multi_batch), native for ours and a loop over ParallelEnvs for MaMuJoCo.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pettingzoo import ParallelEnv

from envs.multi_batch import MultiBatch, MultiPushBatch

MULTI_IDS = ("robotrl/MultiPush-v0",)
MAMUJOCO_PREFIX = "mamujoco/"


def is_multi(env_id: str) -> bool:
    return env_id in MULTI_IDS or env_id.startswith(MAMUJOCO_PREFIX)


def _mamujoco(env_id: str, **kwargs: Any) -> ParallelEnv:
    """`mamujoco/HalfCheetah-2x3` -> gymnasium_robotics.mamujoco_v1.parallel_env("HalfCheetah", "2x3")."""
    name = env_id.removeprefix(MAMUJOCO_PREFIX)
    scenario, sep, conf = name.rpartition("-")
    if not sep or not scenario:
        raise ValueError(f"{env_id!r}: expected mamujoco/<Robot>-<split>, e.g. mamujoco/HalfCheetah-2x3")
    try:
        from gymnasium_robotics import mamujoco_v1
    except ImportError as exc:
        raise ValueError(f"{env_id}: MaMuJoCo needs gymnasium-robotics (pip install 'robotrl[train]')") from exc
    return mamujoco_v1.parallel_env(scenario, conf, **kwargs)


def make_multi(env_id: str, **kwargs: Any) -> ParallelEnv:
    """A multi-robot PettingZoo ParallelEnv by id (kwargs go to the constructor, e.g. n_robots=3)."""
    if env_id == "robotrl/MultiPush-v0":
        from envs.multi_parallel import MultiPushParallelEnv

        return MultiPushParallelEnv(**kwargs)
    if env_id.startswith(MAMUJOCO_PREFIX):
        return _mamujoco(env_id, **kwargs)
    raise ValueError(f"unknown multi-robot env id {env_id!r} (expected one of {', '.join(MULTI_IDS)} "
                     f"or {MAMUJOCO_PREFIX}<Robot>-<split>)")


def make_multi_batch(env_id: str, num_envs: int, **kwargs: Any) -> MultiBatch:
    """num_envs copies of a multi-robot env behind the batched training interface."""
    if env_id == "robotrl/MultiPush-v0":
        return MultiPushBatch(num_envs, **kwargs)
    return ParallelBatch([make_multi(env_id, **kwargs) for _ in range(num_envs)])


class ParallelBatch(MultiBatch):
    """Any ParallelEnvs with a `state()` as a batch: observations and actions zero-padded to the largest agent."""

    def __init__(self, envs: list[ParallelEnv]) -> None:
        self.envs = envs
        first = envs[0]
        self.num_envs = len(envs)
        self.agents = list(first.possible_agents)
        obs_spaces = [first.observation_space(a) for a in self.agents]
        act_spaces = [first.action_space(a) for a in self.agents]
        self.obs_sizes = [int(s.shape[0]) for s in obs_spaces]
        self.act_sizes = [int(s.shape[0]) for s in act_spaces]
        self.obs_dim, self.act_dim = max(self.obs_sizes), max(self.act_sizes)
        space = getattr(first, "state_space", None)
        self.state_dim = int(space.shape[0]) if space is not None else int(np.asarray(first.state()).size)
        # A shared actor needs one bound per action column: every agent that has column j agrees on it. An agent
        # with fewer joints is padded with the column's bounds (its padded outputs are never sent).
        low = np.full(self.act_dim, np.nan, dtype=np.float32)
        high = np.full(self.act_dim, np.nan, dtype=np.float32)
        for a, s in zip(self.agents, act_spaces, strict=True):
            n = int(s.shape[0])
            known = ~np.isnan(low[:n])
            if np.any(low[:n][known] != s.low[known]) or np.any(high[:n][known] != s.high[known]):
                raise ValueError(f"ParallelBatch: agent {a}'s action bounds differ from another agent's on the same "
                                 "action columns; a shared actor needs equal bounds")
            low[:n], high[:n] = s.low, s.high
        self.action_low, self.action_high = low, high
        spec = getattr(getattr(first, "single_agent_env", None), "spec", None)
        self.max_episode_steps = int(getattr(spec, "max_episode_steps", None) or 1000)

    def _obs(self, per_env: list[dict[str, np.ndarray]]) -> np.ndarray:
        out = np.zeros((self.num_envs, self.num_agents, self.obs_dim), dtype=np.float32)
        for e, obs in enumerate(per_env):
            for i, a in enumerate(self.agents):
                out[e, i, : self.obs_sizes[i]] = obs[a]
        return out

    def _state(self) -> np.ndarray:
        return np.stack([np.asarray(env.state(), dtype=np.float32).reshape(-1) for env in self.envs])

    def reset(self, seed: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        per_env = [env.reset(seed=None if seed is None else seed + e)[0] for e, env in enumerate(self.envs)]
        return self._obs(per_env), self._state()

    def step(self, actions: np.ndarray):
        actions = np.asarray(actions, dtype=np.float32).reshape(self.num_envs, self.num_agents, self.act_dim)
        n = self.num_envs
        reward, terminated, truncated = np.zeros(n), np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
        per_env = []
        for e, env in enumerate(self.envs):
            act = {a: actions[e, i, : self.act_sizes[i]] for i, a in enumerate(self.agents)}
            obs, rew, term, trunc, _ = env.step(act)
            # A shared team reward: every agent gets the same number; take the first.
            reward[e] = float(rew[self.agents[0]])
            terminated[e] = any(term.values())
            truncated[e] = any(trunc.values()) and not terminated[e]
            per_env.append(obs)
        obs, state = self._obs(per_env), self._state()
        done = terminated | truncated
        info: dict[str, Any] = {"done": done}
        if done.any():
            info["final_obs"], info["final_state"] = obs.copy(), state.copy()
            for e in np.flatnonzero(done):
                per_env[e] = self.envs[e].reset()[0]
            obs, state = self._obs(per_env), self._state()
        return obs, state, reward, terminated, truncated, info

    def close(self) -> None:
        for env in self.envs:
            env.close()
