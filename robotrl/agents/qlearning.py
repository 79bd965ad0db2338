"""Tabular control on a grid-discretized robot: Q-learning, SARSA, or every-visit Monte Carlo.

The Q-table starts at zero and actions are epsilon-greedy with a linearly decaying epsilon. The
one-step methods apply the course's TD update after every transition,

    Q(s, a) <- Q(s, a) + alpha * (target - Q(s, a)),
    target  =  r + gamma * max_a' Q(s', a')   (Q-learning)   or   r + gamma * Q(s', a')   (SARSA),

with the bootstrap term 0 when s' is terminal. A time-limit truncation is not terminal: the target
bootstraps from the final observation. Monte Carlo waits for the episode's end and moves every
visited (s, a) toward its discounted return (constant step size), a truncated episode's return
ending in the greedy value of its final state.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from gymnasium import spaces

from envs.wrappers import find_action_bins, find_observation_grid
from policies.q_table import QTable
from robotrl.agents.protocol import Algorithm
from robotrl.config import RunConfig
from robotrl.core.episodes import EpisodeStats
from robotrl.core.schedules import exploration_epsilon, learning_rate
from robotrl.core.vec_env import VecEnv
from robotrl.hyper.qlearning import Hyper


def td_update(q: np.ndarray, s: int, a: int, r: float, s_next: int, terminated: bool, alpha: float,
              gamma: float, a_next: int | None = None) -> float:
    """One TD update of q in place; Q-learning when a_next is None, SARSA otherwise. Returns the TD error."""
    if terminated:
        bootstrap = 0.0  # a terminal state is worth nothing; a truncated one is not terminal
    elif a_next is None:
        bootstrap = q[s_next].max()
    else:
        bootstrap = q[s_next, a_next]
    error = r + gamma * bootstrap - q[s, a]
    q[s, a] += alpha * error
    return float(error)


def mc_update(q: np.ndarray, episode: list[tuple[int, int, float]], tail_value: float, alpha: float,
              gamma: float) -> None:
    """Every-visit constant-alpha MC: each (s, a) of the episode moves toward its return G_t, where the
    return after the last step is `tail_value` (0 for a terminal end)."""
    g = tail_value
    for s, a, r in reversed(episode):
        g = r + gamma * g
        q[s, a] += alpha * (g - q[s, a])


def make_policy(cfg: RunConfig, env: VecEnv) -> QTable:
    obs_space, act_space = env.single_observation_space, env.single_action_space
    if not isinstance(obs_space, spaces.Discrete) or not isinstance(act_space, spaces.Discrete):
        raise ValueError(f"{cfg.env.id}: tabular control needs Discrete observations and actions, got "
                         f"{obs_space} and {act_space} (set env.kwargs.discretize_obs and discretize_actions)")
    grid = find_observation_grid(env)
    bins = find_action_bins(env)
    return QTable(int(obs_space.n), int(act_space.n),
                  grid=None if grid is None else {"bins": grid.bins.tolist(), "low": grid.low.tolist(),
                                                  "high": grid.high.tolist()},
                  action_table=None if bins is None else bins.table)


class TabularCollector:
    """Steps the vector env epsilon-greedily and learns from every transition as it happens."""

    def __init__(self, env: VecEnv, policy: QTable, hp: Hyper, rng: np.random.Generator) -> None:
        self.env, self.policy, self.hp, self.rng = env, policy, hp, rng
        self.alpha = hp.learning_rate
        """The step size of the next updates (the agent sets it from the schedule)."""
        self.q = policy.q.numpy()  # shares memory with the module's buffer
        self.obs: np.ndarray | None = None
        self.actions: np.ndarray | None = None
        self.episodes: list[list[tuple[int, int, float]]] = [[] for _ in range(env.num_envs)]

    def reset(self, seed: int | None = None) -> None:
        self.obs, _ = self.env.reset(seed=seed)
        self.actions = None
        self.episodes = [[] for _ in range(self.env.num_envs)]

    def choose(self, states: np.ndarray, epsilon: float) -> np.ndarray:
        rows = self.q[states]
        # Random tie-breaking: a zero-initialized table would otherwise always pick action 0.
        greedy = np.array([self.rng.choice(np.flatnonzero(row == row.max())) for row in rows])
        explore = self.rng.random(len(states)) < epsilon
        return np.where(explore, self.rng.integers(0, self.q.shape[1], size=len(states)), greedy)

    def step(self, epsilon: float, episodes: EpisodeStats) -> float:
        if self.obs is None:
            raise RuntimeError("TabularCollector.step() before reset(seed) (Agent.start does it)")
        hp = self.hp
        s = np.asarray(self.obs, dtype=np.int64)
        a = self.actions if self.actions is not None else self.choose(s, epsilon)
        obs, reward, terminated, truncated, infos = self.env.step(a)
        done = terminated | truncated
        episodes.add(reward, done, infos)
        s_next = np.asarray(obs, dtype=np.int64).copy()
        for i in np.flatnonzero(done):
            s_next[i] = infos["final_obs"][i]
        errors = []
        if hp.method == "sarsa":
            next_actions = self.choose(np.asarray(obs, dtype=np.int64), epsilon)
            # After a truncation the next action belongs to a new episode; bootstrap with one drawn at the final state.
            bootstrap_actions = next_actions.copy()
            if truncated.any():
                bootstrap_actions[truncated] = self.choose(s_next[truncated], epsilon)
            for i in range(len(s)):
                errors.append(td_update(self.q, s[i], a[i], reward[i], s_next[i], terminated[i], self.alpha,
                                        hp.gamma, bootstrap_actions[i]))
            self.actions = next_actions
        elif hp.method == "qlearning":
            for i in range(len(s)):
                errors.append(td_update(self.q, s[i], a[i], reward[i], s_next[i], terminated[i], self.alpha,
                                        hp.gamma))
        else:
            for i in range(len(s)):
                self.episodes[i].append((int(s[i]), int(a[i]), float(reward[i])))
                if done[i]:
                    tail = 0.0 if terminated[i] else float(self.q[s_next[i]].max())
                    mc_update(self.q, self.episodes[i], tail, self.alpha, hp.gamma)
                    self.episodes[i] = []
        self.obs = obs
        return float(np.mean(np.abs(errors))) if errors else float("nan")


class Agent:
    """Tabular control; collect() steps and learns, update() only reports (the table is already updated)."""

    def __init__(self, cfg: RunConfig, env: VecEnv, device: torch.device) -> None:
        del device  # the Q-table lives on the CPU: ALGORITHM.devices is ("cpu",)
        self.hp: Hyper = cfg.hyper
        self.total_steps = cfg.train.total_steps
        self.num_envs = env.num_envs
        self.policy = make_policy(cfg, env)
        self.rng = np.random.default_rng(cfg.seed)
        self.collector = TabularCollector(env, self.policy, self.hp, self.rng)
        self.env_steps = 0
        self.td_errors: list[float] = []

    def epsilon(self) -> float:
        return exploration_epsilon(self.hp, self.env_steps / self.total_steps)

    def start(self, seed: int) -> None:
        self.collector.reset(seed=seed)

    def collect(self, episodes: EpisodeStats) -> int:
        # The last collect stops at the run's budget (in whole vector steps), as SAC's and DQN's do.
        rounds = min(self.hp.steps_per_collect, max(-(-(self.total_steps - self.env_steps) // self.num_envs), 1))
        for _ in range(rounds):
            progress = min(self.env_steps / self.total_steps, 1.0)
            self.collector.alpha = learning_rate(self.hp.learning_rate, self.hp.anneal_lr, progress)
            self.td_errors.append(self.collector.step(self.epsilon(), episodes))
            self.env_steps += self.num_envs
        return rounds * self.num_envs

    def update(self, progress: float) -> dict[str, float]:
        q = self.collector.q
        out = {"charts/epsilon": self.epsilon(), "charts/learning_rate": self.collector.alpha,
               "charts/states_visited": float(np.mean(np.any(q != 0, axis=1)))}
        errors = [e for e in self.td_errors if not np.isnan(e)]
        if errors:
            out["losses/td_error_abs"] = float(np.mean(errors))
        self.td_errors = []
        return out

    def state_dict(self) -> dict[str, Any]:
        return {"policy": self.policy.state_dict(), "rng": self.rng.bit_generator.state, "env_steps": self.env_steps}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.policy.load_state_dict(state["policy"])
        self.rng.bit_generator.state = state["rng"]
        self.env_steps = state["env_steps"]

    def close(self) -> None:
        """Nothing to release: the env is the trainer's."""


ALGORITHM = Algorithm(name="qlearning", agent=Agent, make_policy=make_policy, devices=("cpu",))
