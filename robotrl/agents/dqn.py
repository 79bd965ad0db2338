"""Deep Q-Networks (Mnih et al. 2015) and the variants that fix its known faults, as options.

Replay memory with uniform sampling, a target network (hard copies, or Polyak averaging with tau < 1),
Double DQN targets (van Hasselt et al. 2016: the online net picks the next action, the target net
values it), Huber or MSE loss, a linearly decaying epsilon, learning starts, train frequency and
gradient steps, gradient-norm clipping, a dueling head, n-step returns, and for pixels the random-shift
augmentation of DrQ. Truncated episodes bootstrap from their final observation; only terminal states
are worth 0.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from torch import nn
from torch.nn import functional as F

from envs.wrappers import find_action_bins
from policies.q_network import QNetwork
from robotrl.agents.protocol import Algorithm
from robotrl.config import RunConfig
from robotrl.core.augment import random_shift
from robotrl.core.episodes import EpisodeStats
from robotrl.core.nstep import NStepAccumulator
from robotrl.core.replay import FrameReplayBuffer, ReplayBuffer, Transitions
from robotrl.core.schedules import exploration_epsilon, learning_rate, set_learning_rate
from robotrl.core.vec_env import VecEnv, space_shape
from robotrl.core.weight_average import WeightAverage, lerp_weights_
from robotrl.hyper.dqn import Hyper


def td_targets(online: nn.Module, target: nn.Module, batch: Transitions[torch.Tensor], double: bool) -> torch.Tensor:
    """r + discount * (1 - terminated) * Q_target(s', a*), a* = argmax Q_target (DQN) or argmax Q_online
    (Double DQN). `batch` holds tensors here."""
    with torch.no_grad():
        next_q = target(batch.next_obs)
        # Double DQN decouples choosing the next action from valuing it, which removes the max's upward bias.
        chooser = online(batch.next_obs) if double else next_q
        best = chooser.argmax(-1, keepdim=True)
        bootstrap = next_q.gather(-1, best).squeeze(-1)
        return batch.rewards + batch.discounts * (1.0 - batch.terminated) * bootstrap


def make_policy(cfg: RunConfig, env: VecEnv) -> QNetwork:
    """The Q-network for the env's spaces, holding the discretized robot's action table."""
    obs_space, act_space = env.single_observation_space, env.single_action_space
    if not isinstance(act_space, spaces.Discrete):
        raise ValueError(f"{cfg.env.id}: DQN needs a Discrete action space, got {act_space} "
                         "(set env.kwargs.discretize_actions)")
    if not isinstance(obs_space, spaces.Box) or len(obs_space.shape) not in (1, 3):
        raise ValueError(f"{cfg.env.id}: DQN needs a flat Box or a (stack, H, W) pixel observation, got {obs_space}")
    bins = find_action_bins(env)
    return QNetwork(obs_space.shape, int(act_space.n), hidden=cfg.policy.hidden, activation=cfg.policy.activation,
                    dueling=cfg.hyper.dueling, normalize_obs=cfg.policy.normalize_obs,
                    action_table=None if bins is None else bins.table)


class EpsilonGreedyCollector:
    """Steps the vector env with epsilon-greedy actions and files the transitions into the replay."""

    def __init__(self, env: VecEnv, policy: QNetwork, replay: ReplayBuffer | FrameReplayBuffer, hp: Hyper,
                 rng: np.random.Generator, device: torch.device) -> None:
        self.env, self.policy, self.replay, self.rng, self.device = env, policy, replay, rng, device
        self.nstep = NStepAccumulator(env.num_envs, hp.n_step, hp.gamma)
        self.obs: np.ndarray | None = None

    def reset(self, seed: int | None = None) -> None:
        self.obs, _ = self.env.reset(seed=seed)
        self.nstep.clear()
        if isinstance(self.replay, FrameReplayBuffer):
            self.replay.mark_episode_start()

    def step(self, epsilon: float, episodes: EpisodeStats, update_normalizer: bool) -> None:
        if self.obs is None:
            raise RuntimeError("EpsilonGreedyCollector.step() before reset(seed) (Agent.start does it)")
        n = self.env.num_envs
        # The one copy of the observations on the run's device: the greedy action and the normalizer's
        # warm-up statistics both read it (a CPU copy for the statistics crashed DQN on cuda).
        obs = torch.as_tensor(self.obs, device=self.device)
        with torch.no_grad():
            greedy = self.policy.deterministic(obs).cpu().numpy()
        explore = self.rng.random(n) < epsilon
        actions = np.where(explore, self.rng.integers(0, self.policy.n_actions, size=n), greedy)
        next_obs, reward, terminated, truncated, infos = self.env.step(actions)
        done = terminated | truncated
        episodes.add(reward, done, infos)
        stored_next = next_obs.copy()
        for i in np.flatnonzero(done):
            stored_next[i] = infos["final_obs"][i]
        if update_normalizer:
            self.policy.normalizer.update(obs)
        if isinstance(self.replay, FrameReplayBuffer):
            self.replay.add(Transitions(self.obs, actions, reward.astype(np.float32), stored_next,
                                        terminated.astype(np.float32),
                                        np.full(n, self.nstep.gamma, np.float32)), ended=done)
        else:
            ready = self.nstep.push(self.obs, actions, reward, stored_next, terminated, done)
            if ready is not None:
                self.replay.add(ready)
        self.obs = next_obs


class Agent:
    """DQN over a vector env.

    collect() interleaves `train_freq` vector steps with `gradient_steps` updates, as DQN prescribes,
    for `steps_per_iteration` env steps; update() reports. (A trainer iteration per vector step would
    spend more time logging than learning.)
    """

    def __init__(self, cfg: RunConfig, env: VecEnv, device: torch.device) -> None:
        self.hp: Hyper = cfg.hyper
        self.device = device
        self.total_steps = cfg.train.total_steps
        self.num_envs = env.num_envs
        self.online = make_policy(cfg, env).to(device)
        self.average: WeightAverage[QNetwork] = WeightAverage()
        self.target = copy.deepcopy(self.online).requires_grad_(False)
        self.optimizer = torch.optim.Adam(self.online.parameters(), lr=self.hp.learning_rate)
        self.rng = np.random.default_rng(cfg.seed)
        shape = space_shape(env.single_observation_space)
        if self.online.pixels:
            self.replay: ReplayBuffer | FrameReplayBuffer = FrameReplayBuffer(self.hp.buffer_size, env.num_envs,
                                                                              shape, self.hp.n_step)
        elif self.hp.augment_shift:
            raise ValueError(f"dqn.augment_shift: shifts images, but {cfg.env.id}'s observations are {shape}, "
                             "not (stack, H, W) pixels")
        else:
            self.replay = ReplayBuffer(self.hp.buffer_size, shape, np.float32)
        self.collector = EpsilonGreedyCollector(env, self.online, self.replay, self.hp, self.rng, device)
        self.env_steps = 0
        self.gradient_updates = 0
        self.next_target_update = self.hp.learning_starts + self.hp.target_update_interval
        self.stats: dict[str, list[float]] = {"losses/td_loss": [], "losses/q_values": []}

    @property
    def policy(self) -> QNetwork:
        """The delivered network: the weight average once it has started, else the online network."""
        return self.online if self.average.network is None else self.average.network

    def epsilon(self) -> float:
        return exploration_epsilon(self.hp, self.env_steps / self.total_steps)

    def start(self, seed: int) -> None:
        self.collector.reset(seed=seed)

    def collect(self, episodes: EpisodeStats) -> int:
        steps = 0
        # The last iteration stops at the run's budget (in whole train_freq rounds), as SAC's does.
        budget = min(self.hp.steps_per_iteration, max(self.total_steps - self.env_steps, 1))
        while steps < budget:
            for _ in range(self.hp.train_freq):
                # The normalizer learns from the warm-up data only, then stays fixed so targets do not drift.
                warmup = self.env_steps < self.hp.learning_starts
                self.collector.step(self.epsilon(), episodes, update_normalizer=warmup)
                self.env_steps += self.num_envs
                steps += self.num_envs
            self.learn()
        return steps

    def _tensors(self, t: Transitions[np.ndarray]) -> Transitions[torch.Tensor]:
        def conv(x: np.ndarray, dtype: torch.dtype | None = None) -> torch.Tensor:
            return torch.as_tensor(x, device=self.device, dtype=dtype)

        obs_dtype = None if self.online.pixels else torch.float32
        return Transitions(conv(t.obs, obs_dtype), conv(t.actions), conv(t.rewards), conv(t.next_obs, obs_dtype),
                           conv(t.terminated), conv(t.discounts))

    def _sync_target(self, tau: float) -> None:
        lerp_weights_(self.target, self.online, tau)

    def learn(self) -> None:
        """`gradient_steps` updates on replayed minibatches, then any target update that is due."""
        hp = self.hp
        if self.env_steps < hp.learning_starts or self.replay.size < hp.batch_size:
            return
        if self.gradient_updates == 0:
            self._sync_target(1.0)
        if hp.anneal_lr:
            progress = min(self.env_steps / self.total_steps, 1.0)
            set_learning_rate(self.optimizer, learning_rate(hp.learning_rate, True, progress))
        for _ in range(hp.gradient_steps):
            batch = self._tensors(self.replay.sample(hp.batch_size, self.rng))
            if hp.augment_shift:
                batch.obs = random_shift(batch.obs, hp.augment_shift, self.rng)
                batch.next_obs = random_shift(batch.next_obs, hp.augment_shift, self.rng)
            targets = td_targets(self.online, self.target, batch, hp.double)
            q = self.online(batch.obs).gather(-1, batch.actions[:, None]).squeeze(-1)
            loss = F.smooth_l1_loss(q, targets) if hp.loss == "huber" else F.mse_loss(q, targets)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if hp.max_grad_norm is not None:
                nn.utils.clip_grad_norm_(self.online.parameters(), hp.max_grad_norm)
            self.optimizer.step()
            self.gradient_updates += 1
            if hp.average_from is not None and self.env_steps >= hp.average_from * self.total_steps:
                self.average.update(self.online)
            self.stats["losses/td_loss"].append(float(loss.detach()))
            self.stats["losses/q_values"].append(float(q.detach().mean()))
        while self.env_steps >= self.next_target_update:
            self._sync_target(hp.tau)
            self.next_target_update += hp.target_update_interval

    def update(self, progress: float) -> dict[str, float]:
        """Learning already happened in collect(); report its averages."""
        out = {"charts/epsilon": self.epsilon(), "charts/replay_size": float(self.replay.size),
               "charts/learning_rate": float(self.optimizer.param_groups[0]["lr"]),
               "charts/gradient_updates": float(self.gradient_updates)}
        out.update({k: float(np.mean(v)) for k, v in self.stats.items() if v})
        self.stats = {k: [] for k in self.stats}
        return out

    def state_dict(self) -> dict[str, Any]:
        # "policy" is what eval, export and view load; "online" is what training resumes from.
        return {"policy": self.policy.state_dict(), "online": self.online.state_dict(),
                "average_count": self.average.count, "target": self.target.state_dict(),
                "optimizer": self.optimizer.state_dict(), "replay": self.replay.state_dict(),
                "rng": self.rng.bit_generator.state, "env_steps": self.env_steps,
                "gradient_updates": self.gradient_updates, "next_target_update": self.next_target_update}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.online.load_state_dict(state.get("online", state["policy"]))
        count = state.get("average_count", 0)
        self.average.restore(count, state["policy"] if count else None, self.online)
        self.target.load_state_dict(state["target"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.replay.load_state_dict(state["replay"])
        self.rng.bit_generator.state = state["rng"]
        self.env_steps, self.gradient_updates = state["env_steps"], state["gradient_updates"]
        self.next_target_update = state["next_target_update"]

    def close(self) -> None:
        """Nothing to release: the env is the trainer's."""


ALGORITHM = Algorithm(name="dqn", agent=Agent, make_policy=make_policy)
