"""What the on-policy agents share: building the actor-critic for an env, and collecting rollouts."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np
import torch
from gymnasium import spaces

from envs.wrappers import find_action_bins
from policies.actor_critic import ActorCritic
from policies.rollout_sampler import RolloutSampler
from robotrl.config import RunConfig
from robotrl.core.episodes import EpisodeStats
from robotrl.core.flat_params import FlatParameters
from robotrl.core.returns import bootstrap_truncated, time_limit_cut
from robotrl.core.running_stats import RewardScaler
from robotrl.core.storage import RolloutStorage
from robotrl.core.vec_env import VecEnv, space_shape


def build_actor_critic(cfg: RunConfig, env: VecEnv) -> ActorCritic:
    """An ActorCritic sized for the env's spaces (Box: Gaussian in [-1, 1] units; Discrete: categorical)."""
    obs_space, act_space = env.single_observation_space, env.single_action_space
    if not isinstance(obs_space, spaces.Box) or len(obs_space.shape) != 1:
        raise ValueError(f"{cfg.env.id}: expected a flat Box observation space, got {obs_space}")
    pc = cfg.policy
    common: dict[str, Any] = dict(hidden=pc.hidden, activation=pc.activation, normalize_obs=pc.normalize_obs)
    if isinstance(act_space, spaces.Box):
        return ActorCritic(obs_space.shape[0], act_space.shape[0], continuous=True,
                           init_log_std=pc.init_log_std, action_low=act_space.low.tolist(),
                           action_high=act_space.high.tolist(), **common)
    if isinstance(act_space, spaces.Discrete):
        bins = find_action_bins(env)
        return ActorCritic(obs_space.shape[0], int(act_space.n), continuous=False,
                           action_table=None if bins is None else bins.table, **common)
    raise ValueError(f"{cfg.env.id}: unsupported action space {act_space}")


def rollout_storage(steps: int, env: VecEnv, policy: ActorCritic, device: torch.device) -> RolloutStorage:
    """A rollout of `steps` steps of every env, shaped by the env's spaces; a categorical policy's
    actions are stored as integers (the indices its log-probability takes)."""
    return RolloutStorage(steps, env.num_envs, space_shape(env.single_observation_space),
                          space_shape(env.single_action_space),
                          torch.float32 if policy.continuous else torch.int64, device)


class CollectorState(ABC):
    """What every single-robot on-policy collector is (a RolloutCollector of RolloutStorage) and keeps
    between rollouts: the reward scaler and the normalizer's update after each policy update. Local and
    Ray collectors share it so a run resumes the same way."""

    policy: ActorCritic
    device: torch.device
    gamma: float
    scaler: RewardScaler | None
    timings: dict[str, float]
    """Where the last fill's time went; empty for local envs."""

    @abstractmethod
    def reset(self, seed: int | None = None) -> None:
        """Start new episodes, seeded seed + i."""

    @abstractmethod
    def fill(self, storage: RolloutStorage, episodes: EpisodeStats) -> None:
        """One rollout into `storage`: rewards scaled, truncations bootstrapped."""

    @abstractmethod
    def last_value(self) -> torch.Tensor:
        """V of the observations after the rollout, GAE's bootstrap."""

    def _tensor(self, x: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(x, dtype=torch.float32, device=self.device)

    def after_update(self, storage: RolloutStorage) -> None:
        """Fold the rollout's observations into the normalizer, between updates (never mid-rollout)."""
        self.policy.normalizer.update(storage.obs.reshape(-1, storage.obs.shape[-1]))

    def state_dict(self) -> dict[str, Any]:
        return {"scaler": self.scaler.state_dict() if self.scaler else None}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.scaler is not None and state.get("scaler") is not None:
            self.scaler.load_state_dict(state["scaler"])


class PolicyOptimizerState:
    """Checkpoint state of an agent made of a policy, one optimizer over its flattened parameters and a
    collector (PPO, A2C)."""

    policy: ActorCritic
    flat: FlatParameters
    optimizer: torch.optim.Optimizer
    collector: CollectorState

    def state_dict(self) -> dict[str, Any]:
        return {"policy": self.policy.state_dict(), "optimizer": self.optimizer.state_dict(),
                "collector": self.collector.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.policy.load_state_dict(state["policy"])
        # Checkpoints written before the parameters were flattened hold one state per parameter.
        self.optimizer.load_state_dict(self.flat.convert_optimizer_state(state["optimizer"]))
        self.collector.load_state_dict(state["collector"])


def policy_metrics(policy: ActorCritic, lr: float) -> dict[str, float]:
    """The learning rate and, for a Gaussian policy, its mean action std: logged by every update."""
    out = {"charts/learning_rate": lr}
    if policy.continuous:
        out["charts/action_std"] = float(policy.log_std.detach().exp().mean())
    return out


class OnPolicyCollector(CollectorState):
    """Steps a vector env with the current policy and fills a RolloutStorage.

    Rewards are scaled (optionally) and, where the time limit cut an episode, gamma * V(final_obs)
    is added so truncation is not mistaken for termination.
    """

    def __init__(self, env: VecEnv, policy: ActorCritic, gamma: float, scale_rewards: bool,
                 device: torch.device) -> None:
        self.env, self.policy, self.gamma, self.device = env, policy, gamma, device
        self.timings = {}
        self.scaler = RewardScaler(env.num_envs, gamma) if scale_rewards else None
        self.obs: np.ndarray | None = None

    def reset(self, seed: int | None = None) -> None:
        self.obs, _ = self.env.reset(seed=seed)
        if self.scaler is not None:
            self.scaler.new_episodes()

    def fill(self, storage: RolloutStorage, episodes: EpisodeStats) -> None:
        if self.obs is None:
            raise RuntimeError("OnPolicyCollector.fill() before reset(seed) (Agent.start does it)")
        # The weights are fixed for the rollout: on the CPU a numpy snapshot samples several times faster.
        if RolloutSampler.supports(self.policy):
            sampler = RolloutSampler(self.policy)
            act, to_env = sampler, sampler.to_env
        else:
            act, to_env = self.policy.act, lambda a: self.policy.to_env(a).cpu().numpy()
        for _ in range(storage.steps):
            obs = self._tensor(self.obs)
            action, log_prob, value = act(obs)
            env_action = to_env(action)
            self.obs, reward, terminated, truncated, infos = self.env.step(env_action)
            done = terminated | truncated
            episodes.add(reward, done, infos)
            if self.scaler is not None:
                reward = self.scaler(reward, done)
            reward = self._tensor(reward)
            cut = time_limit_cut(terminated, truncated)
            if cut.any():
                ids = np.flatnonzero(cut)
                final = self._tensor(np.stack([infos["final_obs"][i] for i in ids]))
                with torch.no_grad():
                    reward = bootstrap_truncated(reward, cut, self.policy.value(final), self.gamma)
            storage.add(obs, action, log_prob, value, reward, self._tensor(done))

    @torch.no_grad()
    def last_value(self) -> torch.Tensor:
        if self.obs is None:
            raise RuntimeError("OnPolicyCollector.last_value() before reset(seed) (Agent.start does it)")
        return self.policy.value(self._tensor(self.obs))
